/**
 * `corridor agreement …` (sharing agreements: operators change them with statements signed by
 * their certificate key; operators and members read them) and `corridor policy …` (explain a
 * decision, simulate a draft).
 */
import { create } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { systemClock } from '../../core/clock.js';
import { draftToClaims, parseDraft } from '../../core/bulletin.js';
import { asMemberId, asOperatorId, memberUri, printable } from '../../core/ids.js';
import type { Identity } from '../../core/ids.js';
import { personalDataFields } from '../../core/personal-data.js';
import type { JsonObject } from '../../core/sd-jwt.js';
import { parseStrictJson } from '../../core/strict-json.js';
import {
  ExplainRequestSchema,
  ListAgreementsRequestSchema,
  PolicyService,
  SimulateRequestSchema,
} from '../../gen/corridor/v1/policy_pb.js';
import type { AgreementVersion, Explanation } from '../../gen/corridor/v1/policy_pb.js';
import { readRegionFile } from '../pki/dev-pki.js';
import { agreementVersions, changeAgreementAtHub } from '../agreements.js';
import { connectHub } from '../hub-client.js';
import type { HubConnection } from '../hub-client.js';
import { callErrorToCorridorError } from '../hub-errors.js';
import { homeFrom, hubAddressFrom, readInput, tlsFor } from './common.js';

interface ConnectionOptions {
  hub?: string;
  operator?: string;
  member?: string;
}

type Print = (line: string) => void;

/** The operator the command acts as: --operator, CORRIDOR_OPERATOR, else the region's first. */
async function operatorId(home: string, options: ConnectionOptions): Promise<string> {
  const chosen = options.operator ?? process.env['CORRIDOR_OPERATOR'];
  if (chosen !== undefined && chosen !== '') return asOperatorId(chosen);
  const first = (await readRegionFile(home)).operators[0];
  if (first === undefined) throw new Error('the region names no operator; pass --operator');
  return first.id;
}

/** Connects as the member given with --member, else as the operator. */
async function connectAs(program: Command, options: ConnectionOptions): Promise<{ hub: HubConnection; identity: Identity }> {
  const home = homeFrom(program.opts<{ home?: string }>());
  const identity: Identity =
    options.member !== undefined ? { kind: 'member', id: asMemberId(options.member) } : { kind: 'operator', id: asOperatorId(await operatorId(home, options)) };
  return { hub: connectHub(hubAddressFrom(options), await tlsFor(home, identity)), identity };
}

async function call<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}

async function readJson(file: string): Promise<unknown> {
  return parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(await readInput(file)), file);
}

export function registerPolicyCommands(program: Command): void {
  const agreement = program.command('agreement').description('sharing agreements between states (Protocol art. 17): the basis of the access policy');
  const hubOption = ['--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)'] as const;
  const operatorOption = ['--operator <id>', 'operator identity to sign with (CORRIDOR_OPERATOR); default: the first operator of the region'] as const;
  const memberOption = ['--member <id>', 'read as this member state instead of as an operator'] as const;

  const change = async (options: ConnectionOptions, request: Parameters<typeof changeAgreementAtHub>[2], print: Print): Promise<void> => {
    const home = homeFrom(program.opts<{ home?: string }>());
    const id = asOperatorId(await operatorId(home, options));
    const tls = await tlsFor(home, { kind: 'operator', id });
    const hub = connectHub(hubAddressFrom(options), tls);
    try {
      const version = await changeAgreementAtHub(hub, { id, tls }, request, systemClock);
      print(`recorded agreement ${version.agreementId}@${version.version}${version.ended ? ' (ended)' : ''} (audit position ${version.auditPosition})`);
    } finally {
      hub.close();
    }
  };

  agreement
    .command('add <file>')
    .description('record a new agreement (JSON; `-` for stdin), signed with the operator certificate key')
    .option(...hubOption)
    .option(...operatorOption)
    .action(async (file: string, options: ConnectionOptions) => {
      await change(options, { action: 'put', agreement: await readJson(file), amend: false }, (line) => console.log(line));
    });
  agreement
    .command('amend <file>')
    .description("record the next version of an agreement (the file's id names it); it governs publications from now on")
    .option(...hubOption)
    .option(...operatorOption)
    .action(async (file: string, options: ConnectionOptions) => {
      await change(options, { action: 'put', agreement: await readJson(file), amend: true }, (line) => console.log(line));
    });
  agreement
    .command('end <id>')
    .description('end an agreement from now on; earlier decisions stand')
    .requiredOption('--reason <text>', 'why it ends (recorded and signed)')
    .option(...hubOption)
    .option(...operatorOption)
    .action(async (id: string, options: ConnectionOptions & { reason: string }) => {
      await change(options, { action: 'end', agreementId: id, reason: options.reason }, (line) => console.log(line));
    });
  agreement
    .command('list')
    .description('the agreements in force (with --all, also ended and expired ones), latest version of each')
    .option('--all', 'also agreements not in force')
    .option('--json', 'one JSON object per line')
    .option(...hubOption)
    .option(...operatorOption)
    .option(...memberOption)
    .action(async (options: ConnectionOptions & { all?: boolean; json?: boolean }) => {
      const { hub } = await connectAs(program, options);
      try {
        const response = await call(() =>
          hub.policy.unary(PolicyService.method.listAgreements, create(ListAgreementsRequestSchema, { includeInactive: options.all === true }), { deadlineMs: 15_000 }),
        );
        for (const version of response.agreements) console.log(options.json === true ? agreementJson(version) : agreementLine(version));
        if (response.agreements.length === 0 && options.json !== true) console.log(options.all === true ? 'no agreements' : 'no agreements in force');
      } finally {
        hub.close();
      }
    });
  agreement
    .command('show <id>')
    .description('every version of one agreement, oldest first')
    .option('--json', 'one JSON object per line')
    .option(...hubOption)
    .option(...operatorOption)
    .option(...memberOption)
    .action(async (id: string, options: ConnectionOptions & { json?: boolean }) => {
      const { hub } = await connectAs(program, options);
      try {
        const versions = await agreementVersions(hub, id);
        if (versions.length === 0) throw new Error(`there is no agreement "${printable(id, 64)}"`);
        for (const version of versions) {
          if (options.json === true) {
            console.log(agreementJson(version));
            continue;
          }
          console.log(
            `${version.agreementId}@${version.version}  recorded ${new Date(Number(version.recordedMs)).toISOString()} by ${version.operator}  audit position ${version.auditPosition}` +
              `${version.ended ? `  ENDED: ${version.endReason}` : ''}${version.inForce ? '  in force' : ''}`,
          );
          if (!version.ended) console.log(`  ${JSON.stringify(JSON.parse(version.agreementJson))}`);
        }
      } finally {
        hub.close();
      }
    });

  const policy = program.command('policy').description('the access policy: explain a decision, simulate a draft');
  policy
    .command('explain')
    .description('why a bulletin was (or would be) delivered to an agency, field by field (operators)')
    .requiredOption('--bulletin <id>', 'the bulletin (MEMBER:jti)')
    .requiredOption('--agency <id>', 'the agency (OWNER:unit)')
    .option('--at <time>', 'decide as if published at this time (ISO 8601): a hypothetical delivery')
    .option('--json', 'the explanation as JSON')
    .option(...hubOption)
    .option(...operatorOption)
    .action(async (options: ConnectionOptions & { bulletin: string; agency: string; at?: string; json?: boolean }) => {
      const atMs = options.at === undefined ? undefined : Date.parse(options.at);
      if (atMs !== undefined && Number.isNaN(atMs)) throw new Error('--at must be a date or time, e.g. 2026-11-22T08:00:00Z');
      const { member: _asMember, ...asOperator } = options;
      const { hub } = await connectAs(program, asOperator);
      try {
        const response = await call(() =>
          hub.policy.unary(
            PolicyService.method.explain,
            create(ExplainRequestSchema, { bulletinId: options.bulletin, agencyId: options.agency, ...(atMs === undefined ? {} : { atMs: BigInt(atMs) }) }),
            { deadlineMs: 15_000 },
          ),
        );
        const explanation = response.explanation;
        if (explanation === undefined) throw new Error('the hub answered without an explanation');
        if (options.json === true) console.log(explanationJson(explanation));
        else for (const line of explanationLines(explanation, options.bulletin)) console.log(line);
      } finally {
        hub.close();
      }
    });
  policy
    .command('simulate <file>')
    .description('who would receive a draft published now, and which fields; only its handling and field layout go to the hub, never its content')
    .option('--issuer <member>', 'the originating member, when simulating as an operator')
    .option('--json', 'one JSON object per agency')
    .option(...hubOption)
    .option(...operatorOption)
    .option('--member <id>', 'simulate as this member state (its own drafts); default: as an operator', process.env['CORRIDOR_MEMBER'])
    .action(async (file: string, options: ConnectionOptions & { issuer?: string; json?: boolean }) => {
      const draft = parseDraft(await readJson(file));
      const issuer = options.member ?? options.issuer;
      if (issuer === undefined) throw new Error('name the originating member: --member (as that member) or --issuer (as an operator)');
      // Only the layout: the paths and kinds of the personal-data fields, computed here.
      const claims = draftToClaims(draft, memberUri(asMemberId(issuer)), { jti: 'simulation-only-0000', issuedAt: 0 }) as JsonObject;
      const fields = personalDataFields(claims);
      const { hub } = await connectAs(program, options);
      try {
        const response = await call(() =>
          hub.policy.unary(
            PolicyService.method.simulate,
            create(SimulateRequestSchema, {
              issuer: options.member === undefined ? issuer : '',
              category: draft.category,
              handlingJson: JSON.stringify(draft.handling),
              fields: fields.map((field) => ({ path: field.path, kind: field.kind })),
            }),
            { deadlineMs: 15_000 },
          ),
        );
        let receiving = 0;
        for (const explanation of response.explanations) {
          if (explanation.decision === 'deliver') receiving++;
          console.log(options.json === true ? explanationJson(explanation) : simulationLine(explanation));
        }
        if (options.json !== true) {
          console.log(`${receiving} of ${response.explanations.length} agencies would receive it (${fields.length} personal-data field${fields.length === 1 ? '' : 's'}, decided at ${new Date(Number(response.atMs)).toISOString()})`);
        }
      } finally {
        hub.close();
      }
    });
}

function agreementLine(version: AgreementVersion): string {
  const record = JSON.parse(version.agreementJson) as { parties?: string[]; categories?: string[]; roles?: string[]; purposes?: string[]; personal_data?: string[]; valid_from?: string; valid_until?: string };
  const state = version.ended ? 'ended' : version.inForce ? 'in force' : 'not in force';
  const shared = record.personal_data?.length ? record.personal_data.join(',') : 'none';
  return printable(
    `${version.agreementId}@${version.version}  ${state}  parties ${record.parties?.join(',') ?? ''}  ${record.categories?.length ?? 0} categories  roles ${record.roles?.join(',') ?? ''}` +
      `  purposes ${record.purposes?.join(',') ?? ''}  personal data ${shared}  valid ${record.valid_from ?? '?'}..${record.valid_until ?? ''}`,
    2000,
  );
}

function agreementJson(version: AgreementVersion): string {
  return JSON.stringify({
    id: version.agreementId,
    version: version.version,
    inForce: version.inForce,
    ended: version.ended,
    endReason: version.endReason || undefined,
    operator: version.operator,
    recorded: new Date(Number(version.recordedMs)).toISOString(),
    auditPosition: version.auditPosition.toString(),
    agreement: JSON.parse(version.agreementJson) as unknown,
  });
}

function explanationLines(explanation: Explanation, bulletinId: string): string[] {
  const lines = [
    `${explanation.decision.toUpperCase()}  ${bulletinId} → ${explanation.agencyId}  ${explanation.code}  (${explanation.policyVersion}, decided for ${new Date(Number(explanation.atMs)).toISOString()})`,
    `  reason: ${explanation.reason}`,
    `  agreements: ${explanation.agreements.length === 0 ? 'none' : explanation.agreements.join(', ')}`,
    `  handling: ${explanation.handlingInstruction}`,
  ];
  for (const field of explanation.fields) lines.push(`  ${field.released ? 'released' : 'withheld'}  ${field.kind.padEnd(10)} ${field.path}  (${field.reason})`);
  const recorded = explanation.recorded;
  if (recorded === undefined) {
    lines.push('  recorded: no decision was recorded for this agency (hypothetical)');
  } else {
    const same = recorded.decision === explanation.decision && recorded.code === explanation.code;
    lines.push(`  recorded: ${recorded.decision} ${recorded.code} (${recorded.policyVersion}, audit position ${recorded.auditPosition})${same ? '' : '  — differs from the decision above'}`);
  }
  return lines.map((line) => printable(line, 2000));
}

function simulationLine(explanation: Explanation): string {
  if (explanation.decision !== 'deliver') return printable(`deny     ${explanation.agencyId.padEnd(20)} ${explanation.code}: ${explanation.reason}`, 2000);
  const released = [...new Set(explanation.fields.filter((f) => f.released).map((f) => f.kind))];
  const withheld = [...new Set(explanation.fields.filter((f) => !f.released).map((f) => f.kind))];
  return printable(
    `deliver  ${explanation.agencyId.padEnd(20)} ${explanation.code}` +
      `${released.length > 0 ? `  released: ${released.join(', ')}` : ''}${withheld.length > 0 ? `  withheld: ${withheld.join(', ')}` : ''}`,
    2000,
  );
}

function explanationJson(explanation: Explanation): string {
  return JSON.stringify({
    agencyId: explanation.agencyId,
    decision: explanation.decision,
    code: explanation.code,
    reason: explanation.reason,
    policyVersion: explanation.policyVersion,
    agreements: explanation.agreements,
    handlingInstruction: explanation.handlingInstruction,
    at: new Date(Number(explanation.atMs)).toISOString(),
    fields: explanation.fields.map((f) => ({ path: f.path, kind: f.kind, released: f.released, reason: f.reason })),
    recorded:
      explanation.recorded === undefined
        ? undefined
        : { decision: explanation.recorded.decision, code: explanation.recorded.code, policyVersion: explanation.recorded.policyVersion, auditPosition: explanation.recorded.auditPosition.toString() },
  });
}
