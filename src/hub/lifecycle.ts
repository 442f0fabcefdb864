/**
 * Follow-ups at the hub: checking that a follow-up may be accepted, recording it, and reading a
 * bulletin's status in its thread. The checks run inside the publish transaction, under the
 * ledger lock, so two follow-ups of one bulletin cannot both pass.
 *
 * Rules (see `core/lifecycle.ts`): only the originator may follow up its bulletin
 * (`NOT_ORIGINATOR`); only the latest bulletin of a thread may be followed up
 * (`BULLETIN_SUPERSEDED` names the one to follow up instead); nothing follows a withdrawal
 * (`BULLETIN_WITHDRAWN`); nor a bulletin whose retention has ended (`RETENTION_ENDED`).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { EventKind } from '../core/audit-leaf.js';
import { fail } from '../core/errors.js';
import { bulletinStatus, describeFollowUp } from '../core/lifecycle.js';
import type { BulletinStatus, Lifecycle, LifecycleAction } from '../core/lifecycle.js';
import type { HubDatabase } from './db/schema.js';
import { columnsOf, joinedColumn } from './db/columns.js';
import type { StatementPart } from './db/statement-parts.js';
import type { NewEvent } from './ledger.js';
import { findBulletinById } from './store.js';
import type { StoredBulletin } from './store.js';

/** The bulletin a follow-up supersedes, once the follow-up has been found admissible. */
export interface FollowUpTarget {
  readonly bulletin: StoredBulletin;
  /** The thread's original. */
  readonly rootSequence: bigint;
  /** Every agency the superseded bulletin was delivered to: the follow-up reaches each of them. */
  readonly recipients: ReadonlySet<string>;
}

/**
 * Checks, under the ledger lock, that `member` may follow up `lifecycle.supersedes` now.
 *
 * @throws CorridorError `NOT_FOUND`, `NOT_ORIGINATOR`, `RETENTION_ENDED`, `BULLETIN_WITHDRAWN`
 *   or `BULLETIN_SUPERSEDED`, each saying what to do instead.
 */
export async function checkFollowUpTarget(db: Kysely<HubDatabase>, member: string, lifecycle: Lifecycle, hubTime: Date): Promise<FollowUpTarget> {
  const id = lifecycle.supersedes;
  const bulletin = await findBulletinById(db, id);
  // Another member's bulletin is refused before its existence is looked at (core/lifecycle.ts);
  // this is the same rule on the stored issuer.
  if (bulletin !== undefined && bulletin.issuer !== member) fail('NOT_ORIGINATOR', `${id} was published by ${bulletin.issuer}: only its originator may update, correct or withdraw it`);
  if (bulletin === undefined) fail('NOT_FOUND', `there is no bulletin ${id} of ${member} to ${lifecycle.action === 'withdrawal' ? 'withdraw' : lifecycle.action}`);
  const retention = await db.selectFrom('bulletin_retention').select(['ends_at', 'purged_at']).where('sequence', '=', bulletin.sequence).executeTakeFirst();
  const endsAt = retention === undefined || retention.ends_at > bulletin.expiresAt ? bulletin.expiresAt : retention.ends_at;
  if (retention?.purged_at != null || endsAt <= hubTime) {
    fail('RETENTION_ENDED', `the retention of ${id} ended at ${endsAt.toISOString()}: its recipients no longer hold it, so it can no longer be followed up`);
  }
  const own = await db.selectFrom('bulletin_follow_up').select(['root_sequence', 'supersedes_id', 'action']).where('sequence', '=', bulletin.sequence).executeTakeFirst();
  const rootSequence = own?.root_sequence ?? bulletin.sequence;
  const head = await threadHead(db, rootSequence);
  const status = bulletinStatus(id, own === undefined ? undefined : { supersedes: own.supersedes_id, action: own.action }, head);
  if (status.state === 'withdrawn') {
    fail('BULLETIN_WITHDRAWN', `${id} has been withdrawn${status.latest === undefined ? '' : ` by ${status.latest.id}`}; nothing can follow a withdrawal: publish a new bulletin instead`);
  }
  if (status.latest !== undefined) {
    fail('BULLETIN_SUPERSEDED', `${id} has already been superseded by ${status.latest.id} (${status.latest.action}); follow up ${status.latest.id} instead`);
  }
  const delivered = await db.selectFrom('delivery_decision').select('agency_id').where('sequence', '=', bulletin.sequence).where('decision', '=', 'deliver').execute();
  return { bulletin, rootSequence, recipients: new Set(delivered.map((row) => row.agency_id)) };
}

/** The latest follow-up of a thread, if any. */
async function threadHead(db: Kysely<HubDatabase>, rootSequence: bigint): Promise<{ id: string; action: LifecycleAction } | undefined> {
  const row = await db
    .selectFrom('bulletin_follow_up')
    .select(['bulletin_id', 'action'])
    .where('root_sequence', '=', rootSequence)
    .orderBy('sequence', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? undefined : { id: row.bulletin_id, action: row.action };
}

/** A follow-up as its publish batch records it: the bulletin, its sequence, and the thread it extends. */
export interface FollowUpRecord {
  readonly sequence: bigint;
  readonly id: string;
  readonly principal: string;
  readonly issuerJwtSha256: Uint8Array;
  readonly lifecycle: Lifecycle;
  readonly target: FollowUpTarget;
}

/**
 * The BULLETIN_SUPERSEDED or BULLETIN_WITHDRAWN event about the superseded bulletin, which the
 * publish batch stages after its own events (`Ledger.stage`).
 */
export function followUpEvent(followUp: FollowUpRecord): NewEvent {
  const { lifecycle, target } = followUp;
  const withdrawal = lifecycle.action === 'withdrawal';
  return {
    kind: withdrawal ? EventKind.BULLETIN_WITHDRAWN : EventKind.BULLETIN_SUPERSEDED,
    actor: followUp.principal,
    bulletinId: target.bulletin.id,
    objectId: followUp.id,
    objectDigest: followUp.issuerJwtSha256,
    code: withdrawal ? 'WITHDRAWN' : lifecycle.action.toUpperCase(),
    reason: `${followUp.id} is the ${describeFollowUp(lifecycle)}${lifecycle.reason === undefined ? '' : `: ${lifecycle.reason}`}; it goes to the ${target.recipients.size} agencies that received it, and to those the policy releases it to`,
    operation: 'Publish',
  };
}

/**
 * The follow-up rows that mark the superseded bulletins, each naming its event's position: a
 * part of the publish batch's one write (db/statement-parts.ts), with the events and bulletins.
 */
export function followUpParts(recorded: readonly { readonly followUp: FollowUpRecord; readonly position: bigint }[], recordedAt: Date): StatementPart[] {
  if (recorded.length === 0) return [];
  const column = columnsOf(recorded);
  return [
    {
      name: 'follow_ups_written',
      body: sql`
        INSERT INTO bulletin_follow_up (sequence, bulletin_id, supersedes_sequence, supersedes_id, root_sequence, action, audit_position, recorded_at)
        SELECT u.sequence, u.bulletin_id, u.supersedes_sequence, u.supersedes_id, u.root_sequence, u.action, u.audit_position, ${recordedAt}::timestamptz
        FROM unnest(${column(({ followUp }) => followUp.sequence.toString())}::int8[], ${column(({ followUp }) => followUp.id)}::text[],
                    ${column(({ followUp }) => followUp.target.bulletin.sequence.toString())}::int8[], ${column(({ followUp }) => followUp.target.bulletin.id)}::text[],
                    ${column(({ followUp }) => followUp.target.rootSequence.toString())}::int8[], ${column(({ followUp }) => followUp.lifecycle.action)}::text[],
                    ${column(({ position }) => position.toString())}::int8[])
          AS u(sequence, bulletin_id, supersedes_sequence, supersedes_id, root_sequence, action, audit_position)`,
    },
  ];
}

/**
 * The columns a statement reads to tell a bulletin's status: its own follow-up row and its
 * thread's latest follow-up, each left-joined (null when there is none).
 */
export interface JoinedStatusColumns {
  readonly own_supersedes_id: string | null;
  readonly own_action: LifecycleAction | null;
  readonly head_bulletin_id: string | null;
  readonly head_action: LifecycleAction | null;
}

/** A bulletin's status from the columns `findStatuses` and the backlog page (backlog.ts) read. */
export function statusFromJoined(id: string, row: JoinedStatusColumns | undefined): BulletinStatus {
  const own = row === undefined || row.own_action === null ? undefined : { supersedes: joinedColumn(row.own_supersedes_id, 'supersedes_id'), action: row.own_action };
  const head = row === undefined || row.head_action === null ? undefined : { id: joinedColumn(row.head_bulletin_id, 'bulletin_id'), action: row.head_action };
  return bulletinStatus(id, own, head);
}

/**
 * The status of each of the given bulletins in its thread, by sequence: its own follow-up record
 * and its thread's latest, in one statement (the latest through the index of follow-ups by root).
 */
export async function findStatuses(db: Kysely<HubDatabase>, bulletins: readonly { readonly sequence: bigint; readonly id: string }[]): Promise<Map<bigint, BulletinStatus>> {
  const result = new Map<bigint, BulletinStatus>();
  if (bulletins.length === 0) return result;
  const sequences = [...new Set(bulletins.map((b) => b.sequence.toString()))];
  const { rows } = await sql<JoinedStatusColumns & { sequence: bigint }>`
    SELECT s.sequence, own.supersedes_id AS own_supersedes_id, own.action AS own_action, head.bulletin_id AS head_bulletin_id, head.action AS head_action
    FROM unnest(${sequences}::int8[]) AS s(sequence)
    LEFT JOIN bulletin_follow_up own ON own.sequence = s.sequence
    LEFT JOIN LATERAL (
      SELECT f.bulletin_id, f.action FROM bulletin_follow_up f
      WHERE f.root_sequence = coalesce(own.root_sequence, s.sequence)
      ORDER BY f.sequence DESC LIMIT 1
    ) head ON true`.execute(db);
  const bySequence = new Map(rows.map((row) => [row.sequence, row]));
  for (const bulletin of bulletins) result.set(bulletin.sequence, statusFromJoined(bulletin.id, bySequence.get(bulletin.sequence)));
  return result;
}

/** The status of one bulletin. */
export async function findStatus(db: Kysely<HubDatabase>, bulletin: { readonly sequence: bigint; readonly id: string }): Promise<BulletinStatus> {
  return (await findStatuses(db, [bulletin])).get(bulletin.sequence) ?? bulletinStatus(bulletin.id, undefined, undefined);
}
