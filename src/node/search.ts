/**
 * An agency's search over the bulletins released to it (`SearchService`), for `corridor node
 * search`. Every result is the presentation the agency was delivered, and is verified here as a
 * delivery is (originator's signature with the keys the agency pins, every Disclosure, the hub's
 * Key Binding JWT for this agency and cursor, the receipt) before it is shown: a result that
 * does not verify is reported as rejected, never shown as if it did.
 */
import { create } from '@bufbuild/protobuf';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { CorridorError } from '../core/errors.js';
import { printable } from '../core/ids.js';
import type { AgencyId } from '../core/ids.js';
import type { BulletinClaims } from '../core/bulletin.js';
import type { Delivery } from '../gen/corridor/v1/exchange_pb.js';
import { SearchBulletinsRequestSchema, SearchService } from '../gen/corridor/v1/search_pb.js';
import { createKysely, createPool, provideDatabase } from '../infra/database.js';
import { agencyTls, caFiles } from '../infra/home.js';
import type { Logger } from '../infra/log.js';
import { agencyDatabaseName } from './agency.js';
import { migrateNodeDatabase } from './db/migrations.js';
import type { NodeDatabase } from './db/schema.js';
import { reportedStatus } from './follow-up.js';
import type { ReportedStatus } from './follow-up.js';
import { connectHub } from './hub-client.js';
import { loadTlsIdentity } from './pki/dev-pki.js';
import { verifyDelivery } from './subscriber.js';
import { createTrustStore, databasePins, hubKeyDirectory } from './trust.js';

/** What to search for; every filter is optional. */
export interface SearchQuery {
  readonly states?: readonly string[];
  readonly waypointPlace?: string;
  readonly waypointStates?: readonly string[];
  readonly categories?: readonly string[];
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly text?: string;
  readonly originator?: string;
  readonly pageSize?: number;
  readonly pageToken?: string;
}

export type SearchResult =
  | {
      readonly kind: 'verified';
      readonly cursor: bigint;
      readonly bulletinId: string;
      readonly claims: BulletinClaims;
      readonly hubTime: Date;
      readonly reason: string;
      readonly withheld: readonly string[];
      readonly status: ReportedStatus;
      /** Set when the bulletin must not be relied on: its signing key was compromised. */
      readonly marked: string | undefined;
    }
  | { readonly kind: 'rejected'; readonly cursor: bigint; readonly bulletinId: string; readonly code: string; readonly reason: string };

/**
 * Runs one page of a search as `agency` and verifies every result.
 *
 * @throws CorridorError the hub's code when it refuses the search (`REQUEST_INVALID` naming the field).
 */
export async function searchAsAgency(
  config: { readonly home: string; readonly agency: AgencyId; readonly hubAddress: string; readonly databaseUrl: string | undefined },
  query: SearchQuery,
  log: Logger,
  clock: Clock = systemClock,
): Promise<{ results: SearchResult[]; nextPageToken: string }> {
  const tls = await loadTlsIdentity(agencyTls(config.home, config.agency), caFiles(config.home).cert);
  // The agency's own store holds the member keys it pins: results are judged by the same trust as deliveries.
  const database = await provideDatabase({ databaseUrl: config.databaseUrl, home: config.home, name: agencyDatabaseName(config.agency), log: log.child({ subsystem: 'db' }) });
  const db = createKysely<NodeDatabase>(createPool(database.url, 2, log));
  const hub = connectHub(config.hubAddress, tls, { 'grpc.use_local_subchannel_pool': 1 });
  try {
    await migrateNodeDatabase(db);
    const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock, log: log.child({ subsystem: 'trust' }) });
    const response = await hub.search.unary(
      SearchService.method.searchBulletins,
      create(SearchBulletinsRequestSchema, {
        states: [...(query.states ?? [])],
        waypointPlace: query.waypointPlace ?? '',
        waypointStates: [...(query.waypointStates ?? [])],
        categories: [...(query.categories ?? [])],
        sinceMs: BigInt(query.sinceMs ?? 0),
        untilMs: BigInt(query.untilMs ?? 0),
        text: query.text ?? '',
        originator: query.originator ?? '',
        pageSize: query.pageSize ?? 0,
        pageToken: query.pageToken ?? '',
      }),
      { deadlineMs: 30_000 },
    );
    const results: SearchResult[] = [];
    for (const delivery of response.results) results.push(await verifyResult(trust, config.agency, delivery, clock));
    return { results, nextPageToken: printable(response.nextPageToken, 100) };
  } finally {
    hub.close();
    await db.destroy();
    await database.release();
  }
}

async function verifyResult(trust: Parameters<typeof verifyDelivery>[0], agency: AgencyId, delivery: Delivery, clock: Clock): Promise<SearchResult> {
  const bulletinId = printable(delivery.bulletinId, 100);
  try {
    const verified = await verifyDelivery(trust, agency, delivery, clock.now());
    const marked =
      verified.compromise !== undefined
        ? `signing key ${verified.kid} compromised since ${verified.compromise.since.toISOString()}`
        : delivery.marking === undefined
          ? undefined
          : `signing key ${printable(delivery.marking.kid, 64)} revoked as compromised (the hub's marking)`;
    return {
      kind: 'verified',
      cursor: delivery.cursor,
      bulletinId,
      claims: verified.claims,
      hubTime: new Date(verified.receipt.hub_time_ms),
      reason: printable(delivery.reason, 1000),
      withheld: delivery.withheld.slice(0, 16).map((w) => printable(w.kind, 20)),
      status: reportedStatus(delivery.status),
      marked,
    };
  } catch (error) {
    if (!(error instanceof CorridorError)) throw error;
    return { kind: 'rejected', cursor: delivery.cursor, bulletinId, code: error.code, reason: error.message };
  }
}
