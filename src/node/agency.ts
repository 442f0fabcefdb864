/**
 * The agency client's composition root: an agency of a member state (or an observer
 * organisation) receives its deliveries with its own certificate, verifies each one, stores it
 * in its own database before acknowledging it, and resumes after the last stored cursor.
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { AgencyId } from '../core/ids.js';
import { createKysely, createPool, provideDatabase } from '../infra/database.js';
import { agencyTls, caFiles } from '../infra/home.js';
import type { Logger } from '../infra/log.js';
import { migrateNodeDatabase } from './db/migrations.js';
import type { NodeDatabase } from './db/schema.js';
import { connectHub } from './hub-client.js';
import { loadTlsIdentity } from './pki/dev-pki.js';
import { hubChannelOptions } from './retry.js';
import { runSubscriber } from './subscriber.js';
import type { ReceivedRequestNotice } from './requests.js';
import type { MarkedDelivery, RejectedDelivery, VerifiedDelivery } from './subscriber.js';
import { createTrustStore, databasePins, hubKeyDirectory } from './trust.js';

export interface AgencyClientConfig {
  readonly home: string;
  readonly agency: AgencyId;
  readonly hubAddress: string;
  /** An external PostgreSQL for the agency's store; absent for the embedded cluster under `home`. */
  readonly databaseUrl: string | undefined;
  /** Re-read after this cursor instead of resuming after the stored one. */
  readonly fromCursor?: bigint;
}

export interface AgencyClientEvents {
  readonly onDelivery?: (delivery: VerifiedDelivery) => void;
  readonly onRejected?: (rejection: RejectedDelivery) => void;
  /** A delivery handed on earlier is marked: its signing key was compromised when it was logged. */
  readonly onMarked?: (marking: MarkedDelivery) => void;
  readonly onCaughtUp?: (cursor: bigint) => void;
  /** A cooperation request of the agency's state changed state (verified and stored). */
  readonly onRequestNotice?: (notice: ReceivedRequestNotice) => void;
}

export interface RunningAgencyClient {
  /** Settles when the subscriber stops: resolved after close(), rejected if the hub refuses the agency. */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/** The agency's own database in the embedded cluster: `corridor_agency_<owner>_<unit>`. */
export function agencyDatabaseName(agency: AgencyId): string {
  return `corridor_agency_${agency.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`.slice(0, 63);
}

export async function startAgencyClient(config: AgencyClientConfig, log: Logger, events: AgencyClientEvents = {}, clock: Clock = systemClock): Promise<RunningAgencyClient> {
  const tlsFiles = agencyTls(config.home, config.agency);
  const tls = await loadTlsIdentity(tlsFiles, caFiles(config.home).cert);
  const database = await provideDatabase({ databaseUrl: config.databaseUrl, home: config.home, name: agencyDatabaseName(config.agency), log: log.child({ subsystem: 'db' }) });
  const db = createKysely<NodeDatabase>(createPool(database.url, 2, log));
  const release = async (): Promise<void> => {
    await db.destroy();
    await database.release();
  };
  try {
    await migrateNodeDatabase(db);
  } catch (error) {
    await release().catch(() => {});
    throw error;
  }
  const hub = connectHub(config.hubAddress, tls, hubChannelOptions({ initialMs: 200, maxMs: 10_000 }));
  const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock, log: log.child({ subsystem: 'trust' }) });
  const stop = new AbortController();
  const done = runSubscriber({
    hub,
    agency: config.agency,
    db,
    trust,
    log: log.child({ subsystem: 'subscriber', agency: config.agency }),
    clock,
    signal: stop.signal,
    ...(config.fromCursor === undefined ? {} : { fromCursor: config.fromCursor }),
    ...events,
  }).finally(async () => {
    hub.close();
    await release();
  });
  // Callers observe failure through `done`; this keeps an early rejection from going unhandled.
  done.catch(() => {});
  return {
    done,
    close: async () => {
      stop.abort();
      await done.catch(() => {});
    },
  };
}
