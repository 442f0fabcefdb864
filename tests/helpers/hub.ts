/**
 * A real region for integration tests: a dev PKI in a temporary CORRIDOR_HOME, a fresh database
 * on the run's PostgreSQL, and a hub started in-process over mTLS on a free port, which can be
 * stopped and started again on the same address.
 */
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../src/core/clock.js';
import { systemClock } from '../../src/core/clock.js';
import type { Identity } from '../../src/core/ids.js';
import { parseRegion } from '../../src/core/region.js';
import type { Region } from '../../src/core/region.js';
import { parseHubConfig } from '../../src/hub/config.js';
import type { HubConfigInput } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import type { RunningHub } from '../../src/hub/hub.js';
import { freePort } from '../../src/infra/database.js';
import { agencyTls, caFiles, memberTls, operatorTls } from '../../src/infra/home.js';
import { createLogger } from '../../src/infra/log.js';
import type { Logger } from '../../src/infra/log.js';
import { AGENCY_ROLES, BULLETIN_CATEGORIES, PERSONAL_DATA_KINDS, PURPOSES } from '../../src/core/vocabulary.js';
import { asOperatorId } from '../../src/core/ids.js';
import { changeAgreementAtHub } from '../../src/node/agreements.js';
import { connectHub } from '../../src/node/hub-client.js';
import type { HubConnection, TlsMaterial } from '../../src/node/hub-client.js';
import { initDevPki, writeRegionFile } from '../../src/node/pki/dev-pki.js';
import { freshDatabaseUrl } from './database.js';

/** A small region: three members, six agencies with different roles, one observer organisation, one operator. */
export const TEST_REGION = {
  region: 'test.corridor',
  name: 'Test region',
  members: [
    { id: 'IDN', name: 'Indonesia', centralAuthority: 'IDN:police' },
    { id: 'MYS', name: 'Malaysia', centralAuthority: 'MYS:police' },
    { id: 'AUS', name: 'Australia', centralAuthority: 'AUS:border-force' },
  ],
  agencies: [
    { id: 'IDN:police', name: 'Indonesian National Police', member: 'IDN', roles: ['police'] },
    { id: 'IDN:immigration', name: 'Directorate General of Immigration', member: 'IDN', roles: ['immigration'] },
    { id: 'MYS:police', name: 'Royal Malaysia Police', member: 'MYS', roles: ['police'] },
    { id: 'MYS:coast-guard', name: 'Malaysian Maritime Enforcement Agency', member: 'MYS', roles: ['coast_guard'] },
    { id: 'AUS:border-force', name: 'Australian Border Force', member: 'AUS', roles: ['border_guard', 'immigration'] },
    { id: 'IOM:observer', name: 'International Organization for Migration', organisation: 'IOM', roles: ['observer'] },
  ],
  operators: [{ id: 'auditor', name: 'Regional centre auditor' }],
};

/**
 * The test region's default sharing agreement: every party, category, role, purpose and kind of
 * personal data, so that tests of the exchange see the handling rules alone. Policy tests pass
 * their own agreements.
 */
export const OPEN_AGREEMENT = {
  id: 'test-open',
  title: 'Test arrangement sharing everything',
  parties: ['AUS', 'IDN', 'IOM', 'MYS'],
  categories: [...BULLETIN_CATEGORIES],
  roles: [...AGENCY_ROLES],
  purposes: [...PURPOSES],
  personal_data: [...PERSONAL_DATA_KINDS],
  legal_basis: 'Test fixture',
  valid_from: '2000-01-01',
};

export interface TestRegion {
  readonly home: string;
  readonly region: Region;
  readonly databaseUrl: string;
  /** `localhost:<port>`; stable across stopHub/startHub. */
  readonly hubAddress: string;
  readonly hub: () => RunningHub | undefined;
  startHub(): Promise<void>;
  stopHub(): Promise<void>;
  /** Adds the region's agreements as its operator, once; `startHub` does it, a hub started elsewhere needs it called. */
  addAgreements(): Promise<void>;
  tls(identity: Identity): Promise<TlsMaterial>;
  connect(identity: Identity): Promise<HubConnection>;
  close(): Promise<void>;
}

export async function startTestRegion(
  options: {
    clock?: Clock;
    limits?: HubConfigInput['limits'];
    /** Cooperation request deadlines and the overdue check's period. */
    requests?: HubConfigInput['requests'];
    region?: unknown;
    startHub?: boolean;
    metrics?: boolean;
    log?: Logger;
    /** How long a stopping hub waits for calls under way before cutting them off; default 1000. */
    shutdownGraceMs?: number;
    /** Agreements an operator adds when the hub first starts; default {@link OPEN_AGREEMENT}. */
    agreements?: readonly unknown[];
  } = {},
): Promise<TestRegion> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'corridor-region-'));
  await chmod(home, 0o755);
  const pki = await initDevPki(home, parseRegion(options.region ?? TEST_REGION), { now: new Date() });
  await writeRegionFile(home, pki.region);
  const databaseUrl = await freshDatabaseUrl('hub');
  const port = await freePort();
  const config = parseHubConfig({
    home,
    listen: `127.0.0.1:${port}`,
    metricsListen: options.metrics === true ? '127.0.0.1:0' : 'off',
    databaseUrl,
    logLevel: 'silent',
    shutdownGraceMs: options.shutdownGraceMs ?? 1000,
    // Integrate promptly, so tests that read the audit log do not wait long for a checkpoint.
    audit: { integrateIntervalMs: 50 },
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.requests === undefined ? {} : { requests: options.requests }),
  });
  const log = options.log ?? createLogger({ name: 'hub', level: process.env['CORRIDOR_TEST_LOG'] ?? 'silent', fd: 2 });
  let running: RunningHub | undefined;
  let agreementsAdded = false;
  const connections: HubConnection[] = [];

  const tls = async (identity: Identity): Promise<TlsMaterial> => {
    const files =
      identity.kind === 'member' ? memberTls(home, identity.id) : identity.kind === 'agency' ? agencyTls(home, identity.id) : operatorTls(home, identity.id);
    return { ca: await readFile(caFiles(home).cert), cert: await readFile(files.cert), key: await readFile(files.key) };
  };

  const region: TestRegion = {
    home,
    region: pki.region,
    databaseUrl,
    hubAddress: `localhost:${port}`,
    hub: () => running,
    async startHub() {
      running ??= await startHub(config, log, options.clock ?? systemClock);
      await region.addAgreements();
    },
    async addAgreements() {
      if (agreementsAdded) return;
      agreementsAdded = true;
      const agreements = options.agreements ?? [OPEN_AGREEMENT];
      if (agreements.length === 0) return;
      const operator = pki.region.operators[0];
      if (operator === undefined) throw new Error('the test region needs an operator to add agreements');
      const identity = { id: asOperatorId(operator.id), tls: await tls({ kind: 'operator', id: operator.id }) };
      const connection = connectHub(`localhost:${port}`, identity.tls, { 'grpc.use_local_subchannel_pool': 1 });
      try {
        for (const agreement of agreements) {
          await changeAgreementAtHub(connection, identity, { action: 'put', agreement, amend: false }, options.clock ?? systemClock);
        }
      } finally {
        connection.close();
      }
    },
    async stopHub() {
      await running?.close();
      running = undefined;
    },
    tls,
    async connect(identity) {
      // One connection per client, as a real node has, rather than grpc-js's shared subchannel pool.
      const connection = connectHub(`localhost:${port}`, await tls(identity), { 'grpc.use_local_subchannel_pool': 1 });
      connections.push(connection);
      return connection;
    },
    async close() {
      for (const connection of connections) connection.close();
      await running?.close();
      running = undefined;
      await rm(home, { recursive: true, force: true });
    },
  };
  if (options.startHub !== false) await region.startHub();
  return region;
}
