/**
 * `corridor policy …`: the access policy told field by field. `explain` recomputes why a
 * published bulletin was (or, at another time, would be) delivered to an agency, beside the
 * decision recorded at publication (operators). `simulate` asks who would receive a draft
 * published now; the draft is validated and its personal-data fields located here, and only its
 * issuer, category, handling and field layout go to the hub, never its content.
 */
import { create } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { draftToClaims, parseBulletinClaims, parseDraft } from '../../core/bulletin.js';
import type { BulletinDraft } from '../../core/bulletin.js';
import { epochSeconds, systemClock } from '../../core/clock.js';
import type { Clock } from '../../core/clock.js';
import { CorridorError } from '../../core/errors.js';
import { asAgencyId, asMemberId, memberUri, parseBulletinId, printable } from '../../core/ids.js';
import type { MemberId } from '../../core/ids.js';
import { personalDataFields } from '../../core/personal-data.js';
import type { PersonalDataField } from '../../core/personal-data.js';
import type { JsonObject } from '../../core/sd-jwt.js';
import { ExplainRequestSchema, PersonalDataFieldSchema, PolicyService, SimulateRequestSchema } from '../../gen/corridor/v1/policy_pb.js';
import type { Explanation } from '../../gen/corridor/v1/policy_pb.js';
import type { HubConnection } from '../hub-client.js';
import { MAX_DRAFT_BYTES } from '../publisher.js';
import { HUB_DEADLINE_MS, callHub, connectAsMember, connectAsOperator, readJsonFile } from './agreement.js';
import type { HubOptions, OperatorOptions } from './agreement.js';
import { nonEmpty, parseTime } from './common.js';

type Print = (line: string) => void;

/** Stands in for the jti a node would choose: the claims are checked and laid out, never signed. */
const PLACEHOLDER_JTI = 'simulation-only-0000';

export interface ExplainOptions extends OperatorOptions {
  bulletin: string;
  agency: string;
  at?: string;
  json?: boolean;
}

/** Why a bulletin was (or, with `at`, would be) delivered to an agency; prints the explanation. */
export async function explainCommand(options: ExplainOptions, print: Print): Promise<Explanation> {
  // Checked here so that a typo is named before anything is sent.
  parseBulletinId(options.bulletin);
  asAgencyId(options.agency);
  const atMs = options.at === undefined ? undefined : parseTime(options.at, '--at');
  const { hub } = await connectAsOperator(options);
  try {
    const response = await callHub(() =>
      hub.policy.unary(
        PolicyService.method.explain,
        create(ExplainRequestSchema, { bulletinId: options.bulletin, agencyId: options.agency, ...(atMs === undefined ? {} : { atMs: BigInt(atMs) }) }),
        { deadlineMs: HUB_DEADLINE_MS },
      ),
    );
    const explanation = response.explanation ?? failFromHub('the hub answered without an explanation');
    if (options.json === true) print(explanationJson(explanation));
    else for (const line of explanationLines(explanation, options.bulletin, atMs !== undefined)) print(line);
    return explanation;
  } finally {
    hub.close();
  }
}

export interface SimulateOptions extends OperatorOptions {
  member?: string;
  issuer?: string;
  json?: boolean;
}

/** Who simulates, and for which originating member. */
type Simulator = { readonly kind: 'member'; readonly member: MemberId } | { readonly kind: 'operator'; readonly issuer: MemberId };

/**
 * `--member` simulates as that member's node (its own drafts); `--issuer` (with `--operator`
 * or the default operator) as an operator for that member; with neither, CORRIDOR_MEMBER.
 */
function simulator(options: SimulateOptions): Simulator {
  if (options.member !== undefined) {
    if (options.operator !== undefined || options.issuer !== undefined) {
      throw new Error('simulate either as a member (--member) or as an operator (--issuer, optionally --operator), not both');
    }
    return { kind: 'member', member: asMemberId(options.member) };
  }
  if (options.issuer !== undefined) return { kind: 'operator', issuer: asMemberId(options.issuer) };
  if (options.operator !== undefined) throw new Error('as an operator, name the originating member with --issuer');
  const member = nonEmpty(process.env['CORRIDOR_MEMBER']);
  if (member !== undefined) return { kind: 'member', member: asMemberId(member) };
  throw new Error('name the originating member: --member IDN to simulate as its node, or --issuer IDN to simulate as an operator');
}

/**
 * Validates a draft as publishing would (the draft schema, then the claim rules: TLP, handling
 * code, personal-data marking) and lists its personal-data fields: paths and kinds, no values.
 */
export function draftLayout(draft: BulletinDraft, issuer: MemberId, clock: Clock): PersonalDataField[] {
  const claims = draftToClaims(draft, memberUri(issuer), { jti: draft.jti ?? PLACEHOLDER_JTI, issuedAt: epochSeconds(clock.now()) });
  try {
    parseBulletinClaims(claims);
  } catch (error) {
    if (error instanceof CorridorError) throw new CorridorError(error.code, error.message.replace('bulletin claims invalid', 'bulletin draft invalid'));
    throw error;
  }
  // The claims were built from a draft the schema has just parsed: JSON values only.
  return personalDataFields(claims as JsonObject);
}

/** Who would receive the draft in `file` published now, and which of its fields; prints one line per agency and a summary. */
export async function simulateCommand(file: string, options: SimulateOptions, print: Print, clock: Clock = systemClock): Promise<Explanation[]> {
  const who = simulator(options);
  const draft = parseDraft(await readJsonFile(file, 'the draft', { code: 'CONTENT_INVALID', maxBytes: MAX_DRAFT_BYTES }));
  const issuer = who.kind === 'member' ? who.member : who.issuer;
  const fields = draftLayout(draft, issuer, clock);
  const hub: HubConnection = who.kind === 'member' ? await connectAsMember(who.member, options) : (await connectAsOperator(options)).hub;
  try {
    const response = await callHub(() =>
      hub.policy.unary(
        PolicyService.method.simulate,
        create(SimulateRequestSchema, {
          // A member node simulates its own drafts: the hub takes the issuer from its certificate.
          issuer: who.kind === 'operator' ? who.issuer : '',
          category: draft.category,
          handlingJson: JSON.stringify(draft.handling),
          fields: fields.map((field) => create(PersonalDataFieldSchema, { path: field.path, kind: field.kind })),
        }),
        { deadlineMs: HUB_DEADLINE_MS },
      ),
    );
    let receiving = 0;
    for (const explanation of response.explanations) {
      if (explanation.decision === 'deliver') receiving++;
      print(options.json === true ? explanationJson(explanation) : simulationLine(explanation));
    }
    if (options.json !== true) {
      const count = `${fields.length} personal-data field${fields.length === 1 ? '' : 's'}`;
      print(`${receiving} of ${response.explanations.length} agencies would receive it (${count}, decided at ${new Date(Number(response.atMs)).toISOString()})`);
    }
    return response.explanations;
  } finally {
    hub.close();
  }
}

function failFromHub(message: string): never {
  throw new CorridorError('INTERNAL', message);
}

/** Distinct kinds, in the order their first field appears. */
function kinds(explanation: Explanation, released: boolean): string[] {
  return [...new Set(explanation.fields.filter((field) => field.released === released).map((field) => field.kind))];
}

export function explanationLines(explanation: Explanation, bulletinId: string, hypothetical: boolean): string[] {
  const at = new Date(Number(explanation.atMs)).toISOString();
  const lines = [
    `${explanation.decision.toUpperCase()}  ${bulletinId} → ${explanation.agencyId}  ${explanation.code}  (${explanation.policyVersion}, ${hypothetical ? 'as if published at' : 'decided for'} ${at})`,
    `  reason: ${explanation.reason}`,
    `  agreements: ${explanation.agreements.length === 0 ? 'none' : explanation.agreements.join(', ')}`,
    `  handling: ${explanation.handlingInstruction}`,
  ];
  if (explanation.fields.length === 0) lines.push('  fields: none (the bulletin holds no personal data)');
  for (const field of explanation.fields) lines.push(`  ${field.released ? 'released' : 'withheld'}  ${field.kind.padEnd(10)} ${field.path}  (${field.reason})`);
  const recorded = explanation.recorded;
  if (recorded === undefined) {
    lines.push(`  recorded: none (${hypothetical ? 'a hypothetical delivery' : 'no decision was recorded for this agency at publication'})`);
  } else {
    lines.push(`  recorded: ${recorded.decision} ${recorded.code} (${recorded.policyVersion}, audit position ${recorded.auditPosition})`);
    const differs = recorded.decision !== explanation.decision || recorded.code !== explanation.code;
    if (differs) {
      const why = hypothetical
        ? `the decision above is for ${at}; the recorded one was made at publication`
        : recorded.policyVersion !== explanation.policyVersion
          ? `it was made under ${recorded.policyVersion}, the decision above under ${explanation.policyVersion}`
          : "the agency's registration may have changed since publication";
      lines.push(`  note: the recorded decision differs from the recomputed one (${why}); recorded reason: ${recorded.reason}`);
    }
  }
  // Reasons quote what originators and operators wrote: keep terminal control codes out.
  return lines.map((line) => printable(line, 2000));
}

export function simulationLine(explanation: Explanation): string {
  if (explanation.decision !== 'deliver') return printable(`deny     ${explanation.agencyId.padEnd(20)} ${explanation.code}: ${explanation.reason}`, 2000);
  const released = kinds(explanation, true);
  const withheld = kinds(explanation, false);
  return printable(
    `deliver  ${explanation.agencyId.padEnd(20)} ${explanation.code}` +
      `${released.length > 0 ? `  released: ${released.join(', ')}` : ''}${withheld.length > 0 ? `  withheld: ${withheld.join(', ')}` : ''}`,
    2000,
  );
}

function explanationJson(explanation: Explanation): string {
  const { recorded } = explanation;
  return JSON.stringify({
    agencyId: explanation.agencyId,
    decision: explanation.decision,
    code: explanation.code,
    reason: explanation.reason,
    policyVersion: explanation.policyVersion,
    agreements: explanation.agreements,
    handlingInstruction: explanation.handlingInstruction,
    at: new Date(Number(explanation.atMs)).toISOString(),
    fields: explanation.fields.map((field) => ({ path: field.path, kind: field.kind, released: field.released, reason: field.reason })),
    recorded:
      recorded === undefined
        ? undefined
        : {
            decision: recorded.decision,
            code: recorded.code,
            reason: recorded.reason,
            policyVersion: recorded.policyVersion,
            auditPosition: recorded.auditPosition.toString(),
            differs: recorded.decision !== explanation.decision || recorded.code !== explanation.code,
          },
  });
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('the access policy: explain a decision, simulate a draft');
  const home = (): HubOptions => {
    const value = program.opts<{ home?: string }>().home;
    return value === undefined ? {} : { home: value };
  };
  const print = (line: string): void => console.log(line);

  policy
    .command('explain')
    .description('why a bulletin was (or would be) delivered to an agency, field by field, beside the decision recorded at publication (operators)')
    .requiredOption('--bulletin <id>', 'the bulletin (MEMBER:jti)')
    .requiredOption('--agency <id>', 'the agency (OWNER:unit)')
    .option('--at <time>', 'decide as if published at this time (ISO 8601): a hypothetical delivery')
    .option('--json', 'the explanation as one JSON object')
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR); default: the first operator of the region')
    .action(async (options: ExplainOptions) => {
      await explainCommand({ ...options, ...home() }, print);
    });

  policy
    .command('simulate')
    .description('who would receive a draft published now, and which of its fields; only its handling and field layout go to the hub, never its content')
    .argument('<file>', 'the draft (JSON; "-" for stdin), as `corridor node publish` takes it')
    .option('--member <id>', "simulate as this member state's node, for its own drafts (default: CORRIDOR_MEMBER)")
    .option('--operator <id>', 'simulate as this operator (CORRIDOR_OPERATOR; default: the first operator of the region); needs --issuer')
    .option('--issuer <member>', 'as an operator: the originating member state')
    .option('--json', 'one JSON object per agency')
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .action(async (file: string, options: SimulateOptions) => {
      await simulateCommand(file, { ...options, ...home() }, print);
    });
}
