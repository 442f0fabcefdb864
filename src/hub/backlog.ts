/**
 * An agency's backlog, read a page at a time by a subscription resuming from its cursor. A page
 * is one statement: the agency's deliveries after the cursor with their bulletins and, for each,
 * everything its delivery frame carries (the released Disclosures, the bulletin's marking, its
 * own follow-up record and its thread's latest). Read as separate statements, as before, the
 * first bulletin of a subscription waited for five round trips (the page, its Disclosures, its
 * markings, and two for the statuses), each queued behind live publishing on a busy hub: 26-105
 * ms to the first write for five subscriptions opened at once (BENCHMARKS.md, "Night"). One
 * statement also reads all of it in one snapshot: a row it hands out is within retention in that
 * snapshot, so its Disclosures are there (the purge nulls them in the transaction that marks the
 * bulletin purged), and no second read is needed to tell a purge committed in between from a fault.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { BulletinStatus } from '../core/lifecycle.js';
import { joinedColumn } from './db/columns.js';
import type { HubDatabase } from './db/schema.js';
import { toMarking } from './key-store.js';
import { statusFromJoined } from './lifecycle.js';
import type { BulletinMarking } from './key-store.js';
import { retentionEnded, toGrant, toStored } from './store.js';
import type { DeliverableRow } from './store.js';

/** A backlog delivery with what its frame says beside the bulletin. */
export interface BacklogRow extends DeliverableRow {
  /** Set when the bulletin's signing key was revoked as compromised. */
  readonly marking: BulletinMarking | undefined;
  /** Whether the bulletin has been updated, corrected or withdrawn since, and what it follows up. */
  readonly status: BulletinStatus;
}

/** One page of an agency's backlog. */
export interface BacklogPage {
  /** What the agency may be handed, in order. */
  readonly rows: BacklogRow[];
  /**
   * The last delivery to the agency the page read, handed out or not (past its retention): the
   * next page reads after it, so a page of bulletins past retention neither ends the backlog
   * early nor is read again.
   */
  readonly readThrough: bigint;
  /** The page read as many deliveries as asked for: more may follow. */
  readonly more: boolean;
}

/**
 * The agency's deliveries after `afterSequence`, at most `limit` of them read, those within
 * retention at `now` handed out. The page is read first, in sequence order and limited, through
 * the index of the agency's deliveries (`delivery_decision_deliverable`), and only then joined to
 * the bulletins, their retention, markings, follow-ups and Disclosures, key probes per row, so
 * that a page costs the same at 10k and at 1M stored bulletins. Written as one join with the
 * filters, the plan depended on PostgreSQL's statistics and went O(stored) per page: on tables
 * not yet analysed it read every decision of the agency and sorted them (34 ms for the first page
 * at 5k stored, 1.8 ms after ANALYZE), and with statistics it still read all of
 * bulletin_retention for the anti-join.
 */
export async function readBacklogPage(db: Kysely<HubDatabase>, agencyId: string, afterSequence: bigint, limit: number, now: Date): Promise<BacklogPage> {
  const rows = await db
    .selectFrom((eb) =>
      eb
        .selectFrom('delivery_decision')
        .select(['sequence', 'reason', 'policy_version', 'disclosed', 'kb_jwt', 'sd_hash', 'withheld', 'agreements'])
        .where('agency_id', '=', agencyId)
        // A literal, not a parameter: a generic plan can then use the partial index of
        // deliveries (migration 0010), which `decision = $n` does not prove it may.
        .where('decision', '=', sql.lit('deliver'))
        .where('sequence', '>', afterSequence)
        .orderBy('sequence')
        .limit(limit)
        .as('d'),
    )
    .innerJoin('bulletin as b', 'b.sequence', 'd.sequence')
    .leftJoin('bulletin_marking as m', 'm.sequence', 'd.sequence')
    .leftJoin('bulletin_follow_up as own', 'own.sequence', 'd.sequence')
    // The thread's latest follow-up: of the bulletin's original, or of the bulletin if it is one.
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('bulletin_follow_up as f')
          .select(['f.bulletin_id', 'f.action'])
          .where(sql<boolean>`${sql.ref('f.root_sequence')} = coalesce(${sql.ref('own.root_sequence')}, ${sql.ref('d.sequence')})`)
          .orderBy('f.sequence', 'desc')
          .limit(1)
          .as('head'),
      (join) => join.onTrue(),
    )
    // The Disclosures this agency was released, those not purged.
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('bulletin_disclosure as x')
          .select([
            sql<number[] | null>`array_agg(${sql.ref('x.position')} ORDER BY ${sql.ref('x.position')})`.as('positions'),
            sql<string[] | null>`array_agg(${sql.ref('x.encoded')} ORDER BY ${sql.ref('x.position')})`.as('encoded'),
          ])
          .whereRef('x.sequence', '=', 'd.sequence')
          .where(sql<boolean>`${sql.ref('x.position')} = ANY(${sql.ref('d.disclosed')})`)
          .where('x.encoded', 'is not', null)
          .as('released'),
      (join) => join.onTrue(),
    )
    .select([
      'b.sequence', 'b.id', 'b.issuer', 'b.jti', 'b.jws', 'b.jws_sha256', 'b.hub_time', 'b.expires_at', 'b.audit_position', 'b.receipt',
      'd.reason', 'd.policy_version', 'd.disclosed', 'd.kb_jwt', 'd.sd_hash', 'd.withheld', 'd.agreements',
      sql<boolean>`${sql.ref('b.expires_at')} > ${now} AND ${retentionEnded(now)} IS NOT TRUE`.as('handed_out'),
      'm.bulletin_id as marking_bulletin_id', 'm.kid as marking_kid', 'm.code as marking_code', 'm.compromised_since as marking_compromised_since',
      'm.revoked_at as marking_revoked_at', 'm.reason as marking_reason', 'm.audit_position as marking_audit_position', 'm.marked_at as marking_marked_at',
      'own.supersedes_id as own_supersedes_id', 'own.action as own_action',
      'head.bulletin_id as head_bulletin_id', 'head.action as head_action',
      'released.positions as released_positions', 'released.encoded as released_encoded',
    ])
    .orderBy('d.sequence')
    .execute();
  const readThrough = rows.at(-1)?.sequence ?? afterSequence;
  return {
    rows: rows
      .filter((row) => row.handed_out)
      .map((row) => {
        const bulletin = toStored(row);
        const disclosures = new Map<number, string>();
        row.released_positions?.forEach((position, index) => {
          const encoded = row.released_encoded?.[index];
          if (encoded !== undefined) disclosures.set(position, encoded);
        });
        return {
          bulletin,
          ...toGrant(row.jws, row, disclosures),
          marking:
            row.marking_bulletin_id === null
              ? undefined
              : toMarking({
                  sequence: row.sequence,
                  bulletin_id: row.marking_bulletin_id,
                  kid: joinedColumn(row.marking_kid, 'kid'),
                  code: joinedColumn(row.marking_code, 'code'),
                  compromised_since: joinedColumn(row.marking_compromised_since, 'compromised_since'),
                  revoked_at: joinedColumn(row.marking_revoked_at, 'revoked_at'),
                  reason: joinedColumn(row.marking_reason, 'reason'),
                  audit_position: joinedColumn(row.marking_audit_position, 'audit_position'),
                  marked_at: joinedColumn(row.marking_marked_at, 'marked_at'),
                }),
          status: statusFromJoined(bulletin.id, row),
        };
      }),
    readThrough,
    more: rows.length >= limit,
  };
}
