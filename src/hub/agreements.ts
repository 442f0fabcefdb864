/**
 * Sharing agreements at the hub: operators change them by signed statements; every version is
 * kept (insert-only) and recorded as an AGREEMENT_CHANGE event in the same transaction. A change
 * governs publications committed after it; earlier decisions stand.
 */
import { X509Certificate } from 'node:crypto';
import type { Kysely } from 'kysely';
import { agreementToJson, agreementsInForce, parseAgreement } from '../core/agreement.js';
import type { Agreement, AgreementVersion } from '../core/agreement.js';
import { verifyAgreementStatement } from '../core/agreement-statement.js';
import type { AgreementChange } from '../core/agreement-statement.js';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { isMemberId, printable } from '../core/ids.js';
import type { PrincipalOf } from './authn.js';
import type { HubContext } from './context.js';
import type { HubDatabase } from './db/schema.js';
import { inLedgerTransaction } from './ledger.js';
import { recordRefusal } from './refusals.js';
import type { RegistryView } from './registry.js';

/** A stored agreement version with what the operator signed and where it is in the audit log. */
export interface StoredAgreementVersion extends AgreementVersion {
  readonly endReason: string | undefined;
  readonly statement: Uint8Array;
  readonly auditPosition: bigint;
}

const OPERATION = 'ChangeAgreement';
/** A statement is signed just before it is sent; older ones are refused so that none is held back and replayed. */
const STATEMENT_MAX_AGE_SECONDS = 300;
const STATEMENT_MAX_SKEW_SECONDS = 60;

/**
 * Verifies an operator's statement against the certificate the call came with, checks it
 * against the registry and the latest version, and records the new version with its audit
 * event. A refusal leaves one REFUSE event and nothing else.
 */
export async function changeAgreement(
  ctx: HubContext,
  operator: PrincipalOf<'operator'>,
  certificateDer: Uint8Array,
  statement: Uint8Array,
): Promise<StoredAgreementVersion> {
  try {
    const publicKey = new X509Certificate(certificateDer).publicKey;
    const change = await verifyAgreementStatement(statement, publicKey, {
      operatorId: operator.id,
      nowSeconds: epochSeconds(ctx.clock.now()),
      maxAgeSeconds: STATEMENT_MAX_AGE_SECONDS,
      maxSkewSeconds: STATEMENT_MAX_SKEW_SECONDS,
    });
    if (change.action === 'put') checkParties(change.agreement, ctx.registry());
    const stored = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const id = change.action === 'put' ? change.agreement.id : change.agreementId;
      const latest = await latestVersion(ledger.trx, id);
      const expected = (latest?.version ?? 0) + 1;
      if (latest === undefined && change.action === 'end') fail('NOT_FOUND', `there is no agreement "${printable(id, 64)}" to end`);
      if (latest?.ended === true) fail('VERSION_CONFLICT', `agreement ${id} has ended; add it under a new id`);
      if (latest !== undefined && change.action === 'put' && change.version === 1) {
        fail('VERSION_CONFLICT', `agreement ${id} exists (version ${latest.version}); amend it instead`);
      }
      if (change.version !== expected) {
        fail('VERSION_CONFLICT', `agreement ${id} is at version ${expected - 1}; your statement makes version ${change.version}, not ${expected}: fetch it and sign again`);
      }
      const agreement = change.action === 'put' ? change.agreement : (latest?.agreement ?? fail('INTERNAL', 'no version to end'));
      const code = change.action === 'end' ? 'AGREEMENT_ENDED' : expected === 1 ? 'AGREEMENT_ADDED' : 'AGREEMENT_AMENDED';
      const [event] = await ledger.append([
        {
          kind: EventKind.AGREEMENT_CHANGE,
          actor: operator.label,
          objectDigest: sha256(statement),
          objectId: `${id}@${expected}`,
          code,
          reason: describeChange(change, agreement),
          operation: OPERATION,
        },
      ]);
      if (event === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return a position');
      const version: StoredAgreementVersion = {
        agreement,
        version: expected,
        recordedAt: ledger.hubTime,
        ended: change.action === 'end',
        operator: operator.label,
        endReason: change.action === 'end' ? change.reason : undefined,
        statement,
        auditPosition: event.position,
      };
      await ledger.trx
        .insertInto('agreement_version')
        .values({
          agreement_id: id,
          version: expected,
          record: JSON.stringify(agreementToJson(agreement)),
          ended: version.ended,
          end_reason: version.endReason ?? null,
          operator_id: operator.id,
          statement,
          recorded_at: ledger.hubTime,
          audit_position: event.position,
        })
        .execute();
      return version;
    });
    ctx.log.info({ operator: operator.label, agreement: `${stored.agreement.id}@${stored.version}`, ended: stored.ended }, 'agreement changed');
    return stored;
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, operator, OPERATION, error, { objectDigest: sha256(statement) });
    throw error;
  }
}

function describeChange(change: AgreementChange, agreement: Agreement): string {
  if (change.action === 'end') return `ended: ${printable(change.reason, 200)}`;
  const shared = agreement.personalData.length === 0 ? 'no personal data' : `personal data: ${agreement.personalData.join(', ')}`;
  return `${agreement.parties.join(', ')}; ${agreement.categories.length} categories; roles ${agreement.roles.join(', ')}; purposes ${agreement.purposes.join(', ')}; ${shared}`;
}

/** Every party must be a member or organisation the region knows: a typo must not silently share nothing. */
function checkParties(agreement: Agreement, registry: RegistryView): void {
  const organisations = new Set([...registry.agencies.values()].map((a) => a.organisation).filter((o): o is string => o !== undefined));
  for (const party of agreement.parties) {
    if (!(isMemberId(party) && registry.members.has(party)) && !organisations.has(party)) {
      fail('REQUEST_INVALID', `agreement invalid: parties: ${party} is neither a member state nor an organisation of this region`);
    }
  }
}

type VersionRow = {
  agreement_id: string;
  version: number;
  record: Record<string, unknown>;
  ended: boolean;
  end_reason: string | null;
  operator_id: string;
  statement: Uint8Array;
  recorded_at: Date;
  audit_position: bigint;
};

const VERSION_COLUMNS = ['agreement_id', 'version', 'record', 'ended', 'end_reason', 'operator_id', 'statement', 'recorded_at', 'audit_position'] as const;

function toVersion(row: VersionRow): StoredAgreementVersion {
  return {
    agreement: parseAgreement(row.record),
    version: row.version,
    recordedAt: row.recorded_at,
    ended: row.ended,
    operator: `operator:${row.operator_id}`,
    endReason: row.end_reason ?? undefined,
    statement: row.statement,
    auditPosition: row.audit_position,
  };
}

async function latestVersion(db: Kysely<HubDatabase>, id: string): Promise<StoredAgreementVersion | undefined> {
  const row = await db.selectFrom('agreement_version').select(VERSION_COLUMNS).where('agreement_id', '=', id).orderBy('version', 'desc').limit(1).executeTakeFirst();
  return row === undefined ? undefined : toVersion(row);
}

/** Every version of every agreement, oldest first: the input of {@link agreementsInForce}. */
export async function loadAgreementVersions(db: Kysely<HubDatabase>): Promise<StoredAgreementVersion[]> {
  const rows = await db.selectFrom('agreement_version').select(VERSION_COLUMNS).orderBy('agreement_id').orderBy('version').execute();
  return rows.map(toVersion);
}

/** Every version of one agreement, oldest first; NOT_FOUND when there is none. */
export async function agreementHistory(db: Kysely<HubDatabase>, id: string): Promise<StoredAgreementVersion[]> {
  const rows = await db.selectFrom('agreement_version').select(VERSION_COLUMNS).where('agreement_id', '=', id).orderBy('version').execute();
  if (rows.length === 0) fail('NOT_FOUND', `there is no agreement "${printable(id, 64)}"`);
  return rows.map(toVersion);
}

/**
 * Whether a principal may read an agreement: operators all of them, a member only those it is
 * (or was, in any version) a party to. Agreements between other states are theirs to share.
 */
function readableBy(principal: PrincipalOf<'operator' | 'member'>, versions: readonly StoredAgreementVersion[]): boolean {
  return principal.kind === 'operator' || versions.some((v) => v.agreement.parties.includes(principal.id));
}

/** The latest version of each agreement the principal may read, with whether it is in force now. */
export async function listAgreementsFor(
  ctx: HubContext,
  principal: PrincipalOf<'operator' | 'member'>,
  includeInactive: boolean,
): Promise<{ version: StoredAgreementVersion; inForce: boolean }[]> {
  const versions = await loadAgreementVersions(ctx.db);
  const now = ctx.clock.now();
  const inForce = new Set(agreementsInForce(versions, now).map((v) => v.agreement.id));
  const byId = new Map<string, StoredAgreementVersion[]>();
  for (const version of versions) byId.set(version.agreement.id, [...(byId.get(version.agreement.id) ?? []), version]);
  return [...byId.values()]
    .filter((history) => readableBy(principal, history))
    .map((history) => ({ version: history[history.length - 1] ?? fail('INTERNAL', 'an agreement without versions'), inForce: false }))
    .map((entry) => ({ ...entry, inForce: inForce.has(entry.version.agreement.id) }))
    .filter((entry) => includeInactive || entry.inForce);
}

/** Every version of one agreement, oldest first, and whether its latest is in force; NOT_FOUND when there is none the principal may read. */
export async function agreementHistoryFor(
  ctx: HubContext,
  principal: PrincipalOf<'operator' | 'member'>,
  id: string,
): Promise<{ versions: StoredAgreementVersion[]; inForce: boolean }> {
  try {
    const versions = await agreementHistory(ctx.db, id);
    // The same answer as for an unknown id: an agreement's existence is itself information.
    if (!readableBy(principal, versions)) fail('NOT_FOUND', `there is no agreement "${printable(id, 64)}"`);
    const inForce = agreementsInForce(versions, ctx.clock.now()).length > 0;
    return { versions, inForce };
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, principal, 'GetAgreement', error);
    throw error;
  }
}
