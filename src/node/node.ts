/**
 * A member state's node: the composition root. Configuration in, a running node out: it opens
 * the node database (embedded unless configured), loads the signing key from its file, keeps one
 * mTLS connection to the hub, forwards the outbox, and serves the local API on a Unix socket. It
 * owns their shutdown, in reverse order.
 *
 * {@link publishDirect} is the minimal setup without a node: sign and publish in-process.
 */
import { chmod, mkdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { CorridorError } from '../core/errors.js';
import type { MemberId } from '../core/ids.js';
import { createKysely, createPool, provideDatabase } from '../infra/database.js';
import type { PublishResponse } from '../gen/corridor/v1/exchange_pb.js';
import { bindServer, grpc, shutdownServer } from '../infra/grpc.js';
import type { Logger } from '../infra/log.js';
import type { NodeConfig } from './config.js';
import { migrateNodeDatabase } from './db/migrations.js';
import type { NodeDatabase } from './db/schema.js';
import { callErrorToCorridorError } from './hub-errors.js';
import { connectHub } from './hub-client.js';
import type { HubConnection } from './hub-client.js';
import { buildLocalServer, removeStaleSocket, socketTarget } from './local-api.js';
import { findSubmission } from './outbox.js';
import type { Submission } from './outbox.js';
import { loadTlsIdentity } from './pki/dev-pki.js';
import { Forwarder, hubPublisher, prepareBulletin, submitDraft, verifyPublishResponse } from './publisher.js';
import { hubChannelOptions } from './retry.js';
import { SigningKeyring, memberKeyStates, signingKeyFiles } from './signing-keys.js';
import { createTrustStore, databasePins, hubKeyDirectory, memoryPins } from './trust.js';
import type { TrustStore } from './trust.js';

/** Client calls to a running node, for the CLI. */
export { getSubmission, isNodeListening, submitToNode } from './local-api.js';

/** A started node, as {@link startNode} returns it. */
export interface RunningNode {
  readonly member: MemberId;
  /** The Unix socket of the local API. */
  readonly socketPath: string;
  /** The node's trust store (pinned member and hub keys), e.g. for an agency subscriber in the same process. */
  readonly trust: TrustStore;
  /** Submits a draft in-process, exactly as the local API's Submit does. */
  submit(draftJson: Uint8Array): Promise<Submission>;
  /** The state of a submission, or undefined if this node has none with that id. */
  submission(bulletinId: string): Promise<Submission | undefined>;
  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void>;
}

/** The node's database in the embedded cluster: one per member. */
export function nodeDatabaseName(member: MemberId): string {
  return `corridor_node_${member.toLowerCase()}`;
}

/**
 * Starts a node. Resolves once the local API is listening; the hub need not be reachable (the
 * outbox waits for it).
 *
 * @throws CorridorError `STATE_MISSING` for a missing key or certificate file, `CONFIG_INVALID`
 *   for unusable ones or when another node already listens on the socket.
 */
export async function startNode(config: NodeConfig, log: Logger, clock: Clock = systemClock): Promise<RunningNode> {
  const member = config.member;
  let hub: HubConnection | undefined;
  // The key the node signs with follows rotations: once the next key is active in the directory, it signs with that one.
  const signingKey = await SigningKeyring.load(
    signingKeyFiles(config.signingKeyFile),
    () => (hub === undefined ? Promise.reject(new CorridorError('HUB_UNAVAILABLE', 'not connected to the hub')) : memberKeyStates(hub, member)),
    log.child({ subsystem: 'keys' }),
  );
  const tls = await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca);
  await prepareSocketDirectory(config.socketPath);
  await removeStaleSocket(config.socketPath);

  const database = await provideDatabase({
    databaseUrl: config.databaseUrl,
    home: config.home,
    name: nodeDatabaseName(member),
    log: log.child({ subsystem: 'db' }),
  });
  const pool = createPool(database.url, 4, log);
  const db = createKysely<NodeDatabase>(pool);
  let forwarder: Forwarder | undefined;
  const cleanup = async (): Promise<void> => {
    await forwarder?.close();
    hub?.close();
    await db.destroy();
    await database.release();
  };
  try {
    await migrateNodeDatabase(db);
    hub = connectHub(config.hubAddress, tls, hubChannelOptions(config.retry));
    const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock, log: log.child({ subsystem: 'trust' }) });
    forwarder = new Forwarder({
      db,
      member,
      signingKey,
      trust,
      publish: hubPublisher(hub, config.publishDeadlineMs),
      clock,
      log: log.child({ subsystem: 'forwarder' }),
      backoff: config.retry,
    });
    const wake = forwarder.wake.bind(forwarder);
    const publisherLog = log.child({ subsystem: 'publisher' });
    const submit = async (draftJson: Uint8Array): Promise<Submission> =>
      (await submitDraft({ db, member, signingKey, clock, log: publisherLog, wake }, draftJson)).submission;

    const server = buildLocalServer({ db, log: log.child({ subsystem: 'local-api' }), submit });
    await bindServer(server, socketTarget(config.socketPath), grpc.ServerCredentials.createInsecure());
    forwarder.start();
    // A rotation approved while the node was down: pick up the next key now rather than at the first refusal.
    signingKey.sync().catch((error: unknown) => log.debug({ code: error instanceof CorridorError ? error.code : 'INTERNAL' }, 'cannot check the key directory now'));
    log.info({ member, socket: config.socketPath, hub: config.hubAddress }, 'node listening');

    let closing: Promise<void> | undefined;
    return {
      member,
      socketPath: config.socketPath,
      trust,
      submit,
      submission: (bulletinId) => findSubmission(db, bulletinId),
      close: () => {
        closing ??= (async () => {
          log.info({ member }, 'node shutting down');
          await shutdownServer(server, config.shutdownGraceMs);
          await unlink(config.socketPath).catch(() => {});
          await cleanup();
          log.info({ member }, 'node stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    await cleanup().catch(() => {});
    throw error;
  }
}

/**
 * The socket's directory is the access control of the local API (the socket speaks without
 * TLS): it must be reachable by its owner only. A directory we create is made 0700; an existing
 * one that others can enter is refused rather than changed, since it may be shared (`/tmp`).
 */
async function prepareSocketDirectory(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  let mode: number | undefined;
  try {
    mode = (await stat(dir)).mode;
  } catch {
    mode = undefined;
  }
  if (mode === undefined) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    return;
  }
  if ((mode & 0o077) !== 0) {
    throw new CorridorError(
      'CONFIG_INVALID',
      `the socket directory ${dir} is open to others (mode ${(mode & 0o777).toString(8)}); run chmod 700 ${dir} or choose a socket path in a private directory`,
    );
  }
}

/** What {@link publishDirect} needs: the node's identity and the hub, but no database or socket. */
export type DirectPublishConfig = Pick<NodeConfig, 'member' | 'hubAddress' | 'tls' | 'signingKeyFile' | 'publishDeadlineMs'>;

/** What {@link publishDirect} returns once the hub has accepted the bulletin. */
export interface DirectPublishResult {
  readonly bulletinId: string;
  /** The hub's receipt JWS, verified. */
  readonly receipt: Uint8Array;
  readonly sequence: bigint;
  readonly auditPosition: bigint;
  /** True when the hub had these exact bytes already. */
  readonly replayed: boolean;
}

/**
 * Signs a draft and publishes it straight to the hub, without a node database: the minimal
 * setup for `corridor node publish FILE` when no node runs. The receipt is verified against the
 * hub keys from the directory (pinned for this call only). Nothing is retried: on failure the
 * bulletin is not stored anywhere, and the error says so.
 *
 * @throws CorridorError `CONTENT_INVALID` naming the field; the hub's code and message when it
 *   refuses; `HUB_UNAVAILABLE` when it cannot be reached.
 */
export async function publishDirect(config: DirectPublishConfig, draftJson: Uint8Array, log: Logger, clock: Clock = systemClock): Promise<DirectPublishResult> {
  const tls = await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca);
  let hub: HubConnection | undefined;
  const keys = await SigningKeyring.load(
    signingKeyFiles(config.signingKeyFile),
    () => (hub === undefined ? Promise.reject(new CorridorError('HUB_UNAVAILABLE', 'not connected to the hub')) : memberKeyStates(hub, config.member)),
    log.child({ subsystem: 'keys' }),
  );
  // A draft the hub would refuse for its content is refused before anything is sent.
  let prepared = await prepareBulletin(draftJson, config.member, keys.current(), clock);
  hub = connectHub(config.hubAddress, tls, { 'grpc.use_local_subchannel_pool': 1 });
  try {
    // Sign with the key the directory holds active: a next key approved since is promoted first.
    const rotated = await keys.sync().catch((error: unknown) => {
      log.debug({ code: error instanceof CorridorError ? error.code : 'INTERNAL' }, 'cannot check the key directory now');
      return false;
    });
    if (rotated) prepared = await prepareBulletin(draftJson, config.member, keys.current(), clock);
    let response: PublishResponse;
    try {
      response = await hubPublisher(hub, config.publishDeadlineMs)(prepared.jws);
    } catch (error) {
      const refused = callErrorToCorridorError(error, `the hub at ${config.hubAddress}`);
      if (refused.code === 'HUB_UNAVAILABLE') {
        // The hub may have committed it before the answer was lost: say so, and how to retry safely.
        throw new CorridorError(
          'HUB_UNAVAILABLE',
          `${refused.message}; ${prepared.bulletinId} may or may not have been published. Publishing the draft again with "jti": "${prepared.bulletinId.slice(4)}" publishes it if it was not, and is refused as JTI_REUSED if it was; a running node (\`corridor node start\`) stores and forwards instead`,
          {
            cause: error,
          },
        );
      }
      throw refused;
    }
    const trust = createTrustStore({ pins: memoryPins(), directory: hubKeyDirectory(hub), clock, log: log.child({ subsystem: 'trust' }) });
    const verified = await verifyPublishResponse(trust, prepared.bulletinId, prepared.jws, response);
    log.info({ bulletinId: prepared.bulletinId, sequence: verified.claims.sequence, replayed: response.replayed }, 'bulletin published directly');
    return {
      bulletinId: prepared.bulletinId,
      receipt: verified.jws,
      sequence: BigInt(verified.claims.sequence),
      auditPosition: BigInt(verified.claims.audit_position),
      replayed: response.replayed,
    };
  } finally {
    hub.close();
  }
}
