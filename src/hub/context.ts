/** Everything a hub use-case needs, built once by the composition root (`hub.ts`). */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { SigningKey } from '../core/jws.js';
import type { HubDatabase } from './db/schema.js';
import type { AuditIntegrator, AuditLogIdentity, TileCache } from './audit-log.js';
import type { RequestSettings } from './config.js';
import type { IdentityReader } from './authn.js';
import type { CallsInFlight } from './calls-in-flight.js';
import type { Fanout } from './fanout.js';
import type { GroupCommit } from './group-commit.js';
import type { CommitOutcome, VerifiedBulletin } from './publish.js';
import type { AcknowledgeOutcome, PendingAcknowledgement } from './acknowledge.js';
import type { HubMetrics } from './metrics.js';
import type { RegistryView } from './registry.js';

export interface HubLimits {
  /** Largest bulletin JWS accepted, in bytes. */
  readonly maxBulletinBytes: number;
  /** How old `iat` may be at submission, in seconds. */
  readonly iatMaxAgeSeconds: number;
  /** How far ahead of hub time `iat` may be, in seconds. */
  readonly iatMaxSkewSeconds: number;
  /** Live deliveries a subscription may hold unsent before it is cut off as too slow. */
  readonly subscriberBuffer: number;
  /** Rows read per backlog query. */
  readonly backlogPage: number;
  /** Open subscriptions one agency may hold at once. */
  readonly subscriptionsPerAgency: number;
}

export interface HubContext {
  readonly db: Kysely<HubDatabase>;
  readonly clock: Clock;
  readonly registry: () => RegistryView;
  /** Reads the identity a client certificate names. */
  readonly readIdentity: IdentityReader;
  readonly receiptKey: SigningKey;
  /** The hub's public receipt keys, as a JWKS document. */
  readonly receiptJwks: string;
  /** `iss` of the hub's receipts. */
  readonly issuer: string;
  readonly limits: HubLimits;
  readonly fanout: Fanout;
  /** Verified bulletins wait here to be committed together (group commit, see publish.ts). */
  readonly bulletinCommits: GroupCommit<VerifiedBulletin, CommitOutcome>;
  /** Acknowledgements wait here to be committed together (see acknowledge.ts). */
  readonly acknowledgementCommits: GroupCommit<PendingAcknowledgement, AcknowledgeOutcome>;
  readonly metrics: HubMetrics;
  readonly log: Logger;
  /** Aborted when the hub begins shutting down; open streams end. */
  readonly shutdown: AbortSignal;
  /** Every call's handler while it runs: the hub closes its database only once they have settled. */
  readonly calls: CallsInFlight;
  /** The audit log's origin, signing key, quorum and witness keys. */
  readonly identity: AuditLogIdentity;
  /** Audit tiles, cached (a stored tile only grows, so the hashes it holds never change). */
  readonly tiles: TileCache;
  /** Folds committed events into the audit tree; woken after each ledger commit. */
  readonly integrator: AuditIntegrator;
  /** Open subscriptions per agency, to bound what one agency can hold open. */
  readonly openSubscriptions: Map<string, number>;
  /** The region's default retention in days (the stricter of the region file's and the configuration's); undefined for none. */
  readonly retentionDefaultDays: number | undefined;
  /** Cooperation requests: deadlines per urgency, the overdue check's period. */
  readonly requests: RequestSettings;
}
