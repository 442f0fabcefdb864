/**
 * `corridor agreement …`: the sharing agreements the access policy is built from (Protocol
 * art. 17). Operators add, amend and end them with statements signed by their own certificate
 * key; operators and member nodes read them (a member only those it is a party to).
 */
import { create } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { parseAgreement } from '../../core/agreement.js';
import type { Agreement } from '../../core/agreement.js';
import { systemClock } from '../../core/clock.js';
import { CorridorError } from '../../core/errors.js';
import type { ErrorCode } from '../../core/errors.js';
import { asMemberId, asOperatorId, printable } from '../../core/ids.js';
import type { OperatorId } from '../../core/ids.js';
import { parseStrictJson } from '../../core/strict-json.js';
import { ListAgreementsRequestSchema, PolicyService } from '../../gen/corridor/v1/policy_pb.js';
import type { AgreementVersion } from '../../gen/corridor/v1/policy_pb.js';
import { agreementVersions, changeAgreementAtHub } from '../agreements.js';
import type { AgreementChangeRequest } from '../agreements.js';
import { readNodeConfig } from '../config.js';
import { connectHub } from '../hub-client.js';
import type { HubConnection, TlsMaterial } from '../hub-client.js';
import { callErrorToCorridorError } from '../hub-errors.js';
import { loadTlsIdentity, readRegionFile } from '../pki/dev-pki.js';
import { homeFrom, hubAddressFrom, nonEmpty, readInput, tlsFor } from './common.js';

/** Options every agreement and policy command takes to reach the hub. */
export interface HubOptions {
  home?: string;
  hub?: string;
}

export interface OperatorOptions extends HubOptions {
  operator?: string;
}

export interface ReaderOptions extends OperatorOptions {
  member?: string;
}

type Print = (line: string) => void;

/** How long a command waits for the hub's answer. */
export const HUB_DEADLINE_MS = 15_000;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Larger than any agreement the hub accepts (its statements are limited to 64 KiB). */
const MAX_INPUT_BYTES = 256 * 1024;

/**
 * The operator a command acts as, chosen as `corridor audit log` chooses it: `--operator`, then
 * CORRIDOR_OPERATOR, then the first operator of the region file.
 */
export async function operatorIdentity(home: string, options: OperatorOptions): Promise<OperatorId> {
  const chosen = options.operator ?? nonEmpty(process.env['CORRIDOR_OPERATOR']);
  if (chosen !== undefined) return asOperatorId(chosen);
  const first = (await readRegionFile(home)).operators[0];
  if (first === undefined) throw new Error('the region names no operator; pass --operator');
  return asOperatorId(first.id);
}

/** A connection made with the operator's certificate, and that certificate's TLS material (its key signs statements). */
export async function connectAsOperator(options: OperatorOptions): Promise<{ hub: HubConnection; id: OperatorId; tls: TlsMaterial }> {
  const home = homeFrom(options);
  const id = await operatorIdentity(home, options);
  const tls = await tlsFor(home, { kind: 'operator', id });
  return { hub: connectHub(hubAddressFrom(options), tls), id, tls };
}

/**
 * A connection made with a member node's certificate, found as `corridor node …` finds it: the
 * node configuration (CORRIDOR_NODE_CONFIG, the environment, then the options).
 */
export async function connectAsMember(member: string, options: HubOptions): Promise<HubConnection> {
  const config = await readNodeConfig(process.env, { member: asMemberId(member), home: options.home, hubAddress: options.hub });
  const tls = await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca);
  return connectHub(config.hubAddress, tls);
}

/** Reads as the member given with `--member`, else as the operator. */
async function connectAsReader(options: ReaderOptions): Promise<HubConnection> {
  if (options.member !== undefined && options.operator !== undefined) throw new Error('read either as a member (--member) or as an operator (--operator), not both');
  return options.member === undefined ? (await connectAsOperator(options)).hub : connectAsMember(options.member, options);
}

/** Runs one call to the hub; a failure becomes a coded error that says what the hub refused. */
export async function callHub<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}

/**
 * A JSON file (or `-` for stdin) without duplicate member names, at most `maxBytes` long. A file
 * that is not JSON fails with `code` (the strict parser's JWS_MALFORMED speaks of JWS parts, and
 * this is the caller's own input).
 */
export async function readJsonFile(file: string, what: string, options: { code?: ErrorCode; maxBytes?: number } = {}): Promise<unknown> {
  const code = options.code ?? 'REQUEST_INVALID';
  const maxBytes = options.maxBytes ?? MAX_INPUT_BYTES;
  const bytes = await readInput(file);
  if (bytes.byteLength > maxBytes) throw new CorridorError('REQUEST_TOO_LARGE', `${what} ${file} is ${bytes.byteLength} bytes; the limit is ${maxBytes}`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new CorridorError(code, `${what} ${file} is not UTF-8 text`);
  }
  try {
    return parseStrictJson(text, `${what} ${file}`);
  } catch (error) {
    if (error instanceof CorridorError) throw new CorridorError(code, error.message);
    throw error;
  }
}

/** Signs one change as the operator, sends it, and prints what the hub recorded. */
export async function changeAgreementCommand(options: OperatorOptions, change: AgreementChangeRequest, print: Print): Promise<AgreementVersion> {
  const { hub, id, tls } = await connectAsOperator(options);
  try {
    // The helper would sign an ending as version 1, which the hub refuses as a malformed
    // statement; an agreement that does not exist is better named as such.
    if (change.action === 'end' && (await agreementVersions(hub, change.agreementId)).length === 0) {
      throw new CorridorError('NOT_FOUND', `there is no agreement "${printable(change.agreementId, 64)}" to end`);
    }
    const version = await changeAgreementAtHub(hub, { id, tls }, change, systemClock);
    print(`recorded agreement ${version.agreementId}@${version.version}${version.ended ? ' (ended)' : ''} (audit position ${version.auditPosition})`);
    return version;
  } finally {
    hub.close();
  }
}

/** The latest version of each agreement (only those in force unless `all`), one line or JSON object each. */
export async function listAgreements(options: ReaderOptions & { all?: boolean; json?: boolean }, print: Print, now: Date = new Date()): Promise<number> {
  const hub = await connectAsReader(options);
  try {
    const response = await callHub(() =>
      hub.policy.unary(PolicyService.method.listAgreements, create(ListAgreementsRequestSchema, { includeInactive: options.all === true }), { deadlineMs: HUB_DEADLINE_MS }),
    );
    for (const version of response.agreements) print(options.json === true ? agreementJson(version) : agreementLine(version, now));
    if (response.agreements.length === 0 && options.json !== true) print(options.all === true ? 'no agreements' : 'no agreements in force');
    return response.agreements.length;
  } finally {
    hub.close();
  }
}

/** Every version of one agreement, oldest first. */
export async function showAgreement(id: string, options: ReaderOptions & { json?: boolean }, print: Print): Promise<number> {
  const hub = await connectAsReader(options);
  try {
    const versions = await agreementVersions(hub, id);
    // A member is told the same about an agreement it is no party to: the hub answers NOT_FOUND.
    if (versions.length === 0) throw new CorridorError('NOT_FOUND', `there is no agreement "${printable(id, 64)}"`);
    const latest = versions[versions.length - 1]?.version;
    for (const version of versions) {
      if (options.json === true) {
        print(agreementJson(version));
        continue;
      }
      const state = version.ended
        ? `ENDED: ${version.endReason}`
        : version.inForce
          ? 'in force'
          : version.version === latest
            ? 'not in force'
            : `superseded by @${version.version + 1}`;
      print(
        printable(
          `${version.agreementId}@${version.version}  recorded ${new Date(Number(version.recordedMs)).toISOString()} by ${version.operator}  audit position ${version.auditPosition}  ${state}`,
          2000,
        ),
      );
      print(printable(`  ${version.agreementJson}`, 20_000));
    }
    return versions.length;
  } finally {
    hub.close();
  }
}

/** The record of a version, as the hub sent it; validated, so a line never shows a half-read record. */
function recordOf(version: AgreementVersion): Agreement {
  try {
    return parseAgreement(JSON.parse(version.agreementJson));
  } catch (cause) {
    throw new CorridorError('INTERNAL', `the hub sent agreement ${printable(version.agreementId, 64)}@${version.version} in a form this client cannot read`, { cause });
  }
}

/** An instant as a date when it is midnight UTC (how agreements are usually written), else as a UTC time. */
function instant(date: Date): string {
  const iso = date.toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso.replace('.000Z', 'Z');
}

function stateOf(version: AgreementVersion, agreement: Agreement, now: Date): string {
  if (version.ended) return 'ended';
  if (version.inForce) return 'in force';
  if (agreement.validFrom > now) return 'not yet in force';
  if (agreement.validUntil !== undefined && agreement.validUntil <= now) return 'expired';
  return 'not in force';
}

export function agreementLine(version: AgreementVersion, now: Date): string {
  const agreement = recordOf(version);
  const shared = agreement.personalData.length === 0 ? 'none' : agreement.personalData.join(',');
  const validity = `valid from ${instant(agreement.validFrom)}${agreement.validUntil === undefined ? '' : ` until ${instant(agreement.validUntil)}`}`;
  return printable(
    `${version.agreementId}@${version.version}  ${stateOf(version, agreement, now)}  parties ${agreement.parties.join(',')}  ${agreement.categories.length} categories` +
      `  roles ${agreement.roles.join(',')}  purposes ${agreement.purposes.join(',')}  personal data ${shared}  ${validity}`,
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
    // The operator's signed statement (a compact JWS), for anyone who checks the change against the operator's certificate.
    statement: Buffer.from(version.statement).toString('latin1'),
  });
}

export function registerAgreementCommands(program: Command): void {
  const agreement = program.command('agreement').description('sharing agreements between states (Protocol art. 17): the basis of the access policy');
  const home = (): HubOptions => {
    const value = program.opts<{ home?: string }>().home;
    return value === undefined ? {} : { home: value };
  };
  const hubFlag = ['--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)'] as const;
  const operatorFlag = ['--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR); default: the first operator of the region'] as const;
  const memberFlag = ['--member <id>', 'read as this member state (its node certificate) instead of as an operator; a member sees the agreements it is a party to'] as const;
  const print = (line: string): void => console.log(line);

  agreement
    .command('add')
    .description("record a new agreement (version 1), signed with the operator certificate's key")
    .argument('<file>', 'the agreement (JSON; "-" for stdin): id, title, parties, categories, roles, purposes, personal_data, legal_basis, valid_from, valid_until')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (file: string, options: OperatorOptions) => {
      const record = await readJsonFile(file, 'the agreement file');
      await changeAgreementCommand({ ...options, ...home() }, { action: 'put', agreement: record, amend: false }, print);
    });

  agreement
    .command('amend')
    .description("record the next version of an agreement (the file's id names it); it governs publications from now on, earlier decisions stand")
    .argument('<file>', 'the whole amended agreement (JSON; "-" for stdin)')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (file: string, options: OperatorOptions) => {
      const record = await readJsonFile(file, 'the agreement file');
      await changeAgreementCommand({ ...options, ...home() }, { action: 'put', agreement: record, amend: true }, print);
    });

  agreement
    .command('end')
    .description('end an agreement from now on; earlier decisions stand')
    .argument('<id>', 'the agreement id')
    .requiredOption('--reason <text>', 'why it ends (signed and recorded)')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (id: string, options: OperatorOptions & { reason: string }) => {
      await changeAgreementCommand({ ...options, ...home() }, { action: 'end', agreementId: id, reason: options.reason }, print);
    });

  agreement
    .command('list')
    .description('the latest version of each agreement in force (with --all, also ended and expired ones)')
    .option('--all', 'also agreements not in force')
    .option('--json', 'one JSON object per line')
    .option(...hubFlag)
    .option(...operatorFlag)
    .option(...memberFlag)
    .action(async (options: ReaderOptions & { all?: boolean; json?: boolean }) => {
      await listAgreements({ ...options, ...home() }, print);
    });

  agreement
    .command('show')
    .description('every version of one agreement, oldest first: when and by whom it was recorded, its audit position, whether it is in force, and the record')
    .argument('<id>', 'the agreement id')
    .option('--json', 'one JSON object per version')
    .option(...hubFlag)
    .option(...operatorFlag)
    .option(...memberFlag)
    .action(async (id: string, options: ReaderOptions & { json?: boolean }) => {
      await showAgreement(id, { ...options, ...home() }, print);
    });
}
