/**
 * `corridor node audit …`: what a member state checks of the hub's audit log.
 *
 * - `monitor`: the monitor and witness (src/node/audit-monitor.ts), once or every interval;
 *   an alarm prints what is wrong and where the evidence is, and exits with status 2.
 * - `proof`: the C2SP tlog-proof of one of the node's publications, from the hub (or, when the
 *   hub cannot be reached, the one the monitor stored beside the receipt).
 * - `verify-proof`: checks such a proof against a receipt offline, with the region file's pins.
 */
import { sameBytes } from '../../core/bytes.js';
import { createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { leafHash } from '../../core/audit-leaf.js';
import { cosignatureSigner, parseCosignatureVerifierKey } from '../../core/checkpoint.js';
import type { CosignatureSigner } from '../../core/checkpoint.js';
import { systemClock } from '../../core/clock.js';
import type { Clock } from '../../core/clock.js';
import { CorridorError, fail } from '../../core/errors.js';
import type { MemberId } from '../../core/ids.js';
import { decodeLeaf, logTrustOf, openWitnessed, publicationMismatches, verifyPublicationProof } from '../../core/log-monitor.js';
import { verifyInclusion } from '../../core/merkle.js';
import { toBase64 } from '../../core/note.js';
import { readReceiptClaims } from '../../core/receipt.js';
import type { Region } from '../../core/region.js';
import { formatTlogProof } from '../../core/tlog-proof.js';
import { memberAuditDir, memberWitnessKeyFile, pathExists } from '../../infra/home.js';
import { readPrivateJwkFile } from '../../infra/keys.js';
import { createLogger } from '../../infra/log.js';
import type { Logger } from '../../infra/log.js';
import { hubLogClient, runMonitorRound } from '../audit-monitor.js';
import type { RoundResult } from '../audit-monitor.js';
import { openNodeRecords } from '../audit-records.js';
import { loadMonitorState } from '../audit-state.js';
import { readNodeConfig } from '../config.js';
import type { NodeConfig } from '../config.js';
import { connectHub } from '../hub-client.js';
import type { HubConnection } from '../hub-client.js';
import { loadTlsIdentity, readRegionFile } from '../pki/dev-pki.js';
import { describeFailure, homeFrom, nonEmpty, untilSignal } from './common.js';

/** Exit status of a monitor that raised an alarm (1 stays "the command failed"). */
export const ALARM_EXIT_CODE = 2;

interface GlobalOptions {
  home?: string;
}

/** Adds `audit` under the `node` command (created by registerNodeCommands). */
export function registerNodeAuditCommands(program: Command): void {
  const node = program.commands.find((command) => command.name() === 'node') ?? program.command('node');
  const audit = node.command('audit').description("the member state's checks of the hub's audit log: monitor and witness, offline proofs of publication");
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();

  audit
    .command('monitor')
    .description(
      'verify the log (consistency with the last verified checkpoint, every new entry, inclusion of every event about this member, its receipts, deliveries and keys), cosign it as a witness, and raise an alarm on any inconsistency',
    )
    .option('--member <id>', 'the member state (CORRIDOR_MEMBER)', process.env['CORRIDOR_MEMBER'])
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--once', 'one round, then exit: 0 when everything verified, 2 on an alarm')
    .option('--interval-ms <ms>', 'time between rounds', '30000')
    .option('--max-merge-delay-ms <ms>', 'how long an accepted event may take to appear in a signed checkpoint before it counts as missing', '300000')
    .option('--no-witness', 'verify only; do not cosign')
    .action(async (options: { member?: string; hub?: string; once?: boolean; intervalMs: string; maxMergeDelayMs: string; witness: boolean }) => {
      const config = await readNodeConfig(process.env, { member: options.member, home: globals().home, hubAddress: options.hub });
      const log = createLogger({ name: `monitor-${config.member}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
      const monitor = await openMonitor(config, { log, maxMergeDelayMs: positive(options.maxMergeDelayMs, '--max-merge-delay-ms', true), witness: options.witness });
      try {
        if (options.once === true) {
          const result = await monitor.round();
          report(result, config.member);
          if (result.kind === 'alarm') process.exitCode = ALARM_EXIT_CODE;
          return;
        }
        await monitorLoop(monitor, config.member, positive(options.intervalMs, '--interval-ms', false), log);
      } finally {
        await monitor.close();
      }
    });

  audit
    .command('proof')
    .description("write the C2SP tlog-proof of one of this node's publications: its PUBLISH event, the inclusion proof and the signed checkpoint (the latest final one when it covers it)")
    .requiredOption('--bulletin <id>', 'the bulletin id, MEMBER:jti')
    .option('--member <id>', 'the member state (CORRIDOR_MEMBER; default: the bulletin id’s)', process.env['CORRIDOR_MEMBER'])
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--out <file>', 'write the proof here (default: stdout)')
    .option('--receipt-out <file>', "also write the hub's receipt (compact JWS) here")
    .action(async (options: { bulletin: string; member?: string; hub?: string; out?: string; receiptOut?: string }) => {
      const member = nonEmpty(options.member) ?? options.bulletin.split(':')[0];
      const config = await readNodeConfig(process.env, { member, home: globals().home, hubAddress: options.hub });
      const log = createLogger({ name: `proof-${config.member}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
      const result = await publicationProof(config, options.bulletin, log);
      if (options.out === undefined) process.stdout.write(result.proof);
      else await writeFile(options.out, result.proof);
      if (options.receiptOut !== undefined) await writeFile(options.receiptOut, result.receipt);
      console.error(
        `${options.bulletin}: leaf ${result.index} of tree size ${result.treeSize}, ${result.final ? 'final' : 'not final yet'}${result.fromStore ? ' (the hub is unreachable: the proof the monitor stored)' : ''}${options.out === undefined ? '' : `; written to ${options.out}`}`,
      );
    });

  audit
    .command('verify-proof')
    .description("check a tlog-proof against a publish receipt offline, with only the region file's log key, origin and witness keys")
    .requiredOption('--file <file>', 'the tlog-proof')
    .requiredOption('--receipt <file>', "the hub's receipt for the bulletin (compact JWS)")
    .action(async (options: { file: string; receipt: string }) => {
      const region = await readRegionFile(homeFrom(globals()));
      const text = await readFile(options.file, 'utf8').catch(() => fail('STATE_MISSING', `cannot read ${options.file}`));
      const receipt = await readFile(options.receipt).catch(() => fail('STATE_MISSING', `cannot read ${options.receipt}`));
      const proved = verifyPublicationProof(text, readReceiptClaims(new Uint8Array(Buffer.from(receipt.toString('latin1').trim(), 'latin1'))), logTrustOf(region));
      console.log(
        `verified offline: ${proved.bulletinId} was published by ${proved.member} at ${new Date(Number(proved.hubTimeMs)).toISOString()}; ` +
          `it is leaf ${proved.index} of log ${proved.origin} at tree size ${proved.treeSize} (root ${toBase64(proved.rootHash)}), ` +
          `cosigned by ${proved.cosignedBy.length === 0 ? 'no witness' : proved.cosignedBy.join(', ')}: ${proved.final ? 'final' : `not final (quorum ${proved.quorum})`}`,
      );
      console.log("(the receipt's own signature is not checked offline: the hub's receipt key is not in the region file; the log key's signature covers the event)");
    });
}

/** A monitor wired to a node's configuration: its hub connection, records and witness key. */
export interface MonitorSession {
  round(): Promise<RoundResult>;
  close(): Promise<void>;
}

/**
 * Opens what a monitor round needs for `config.member`: the region file (the only trust anchor),
 * the node's records, the member's witness key when it has one, and a connection to the hub (or
 * `options.hub`, which stays the caller's to close).
 */
export async function openMonitor(
  config: NodeConfig,
  options: { readonly log: Logger; readonly maxMergeDelayMs: number; readonly witness: boolean; readonly hub?: HubConnection; readonly clock?: Clock },
): Promise<MonitorSession> {
  const region = await readRegionFile(config.home);
  logTrustOf(region);
  const witness = options.witness ? await loadWitness(config.home, config.member, region) : undefined;
  const opened = await openNodeRecords(config, region, options.log);
  let hub = options.hub;
  const own = hub === undefined;
  try {
    hub ??= connectHub(config.hubAddress, await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca), { 'grpc.use_local_subchannel_pool': 1 });
  } catch (error) {
    await opened.close();
    throw error;
  }
  const connection = hub;
  return {
    round: () =>
      runMonitorRound({
        member: config.member,
        region,
        dir: memberAuditDir(config.home, config.member),
        log: hubLogClient(connection),
        records: opened.records,
        witness,
        clock: options.clock ?? systemClock,
        logger: options.log,
        maxMergeDelayMs: options.maxMergeDelayMs,
      }),
    close: async () => {
      if (own) connection.close();
      await opened.close();
    },
  };
}

/**
 * The member's witness signer, when the region file gives the member a witness key and its private
 * key file is there; it must be the key the region file names.
 * @throws CorridorError `CONFIG_INVALID` when the file holds another key.
 */
export async function loadWitness(home: string, member: MemberId, region: Region): Promise<CosignatureSigner | undefined> {
  const vkey = region.members.find((m) => m.id === member)?.witnessKey;
  const file = memberWitnessKeyFile(home, member);
  if (vkey === undefined || !(await pathExists(file))) return undefined;
  const pinned = parseCosignatureVerifierKey(vkey);
  const signer = cosignatureSigner(pinned.name, createPrivateKey({ key: await readPrivateJwkFile(file), format: 'jwk' }));
  if (signer.verifier.vkey !== pinned.vkey) fail('CONFIG_INVALID', `the witness key in ${file} is not the witness key the region file names for ${member}`);
  return signer;
}

/** Rounds every `intervalMs` until SIGINT or SIGTERM; an alarm ends the loop with status 2. */
async function monitorLoop(monitor: MonitorSession, member: MemberId, intervalMs: number, log: Logger): Promise<void> {
  let stop = false;
  const stopped = untilSignal().then(() => {
    stop = true;
  });
  while (!stop) {
    try {
      const result = await monitor.round();
      report(result, member);
      if (result.kind === 'alarm') {
        process.exitCode = ALARM_EXIT_CODE;
        return;
      }
    } catch (error) {
      // Not an alarm: the hub could not be reached or answered with an error; try again later.
      log.warn({ err: error }, 'monitor round failed');
      console.error(`round failed: ${describeFailure(error)}; retrying in ${intervalMs} ms`);
    }
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, intervalMs).unref())]);
  }
}

/** Lines for people: the verified checkpoint, or the alarm with its evidence. */
export function roundLines(result: RoundResult, member: MemberId): { readonly out: string[]; readonly err: string[] } {
  if (result.kind === 'alarm') {
    return {
      out: [],
      err: [`ALARM (${result.alarm.code}) for ${member}: ${result.alarm.message}`, ...result.alarm.details.map((d) => `  ${d}`), `  evidence kept in ${result.evidenceDir}`],
    };
  }
  const c = result.checked;
  const cosigned = result.cosignedBy.length === 0 ? 'no witness yet' : result.cosignedBy.join(', ');
  return {
    out: [
      `verified checkpoint ${result.origin} size ${result.treeSize} root ${toBase64(result.rootHash)}; cosigned by ${cosigned} (${result.cosignedBy.length} of ${result.quorum} needed): ${result.final ? 'final' : 'not final yet'}`,
      `  ${member}: ${c.newEntries} new entries checked (${c.ownEvents} about ${member}, each proved included); publications in the log ${c.publications}${c.pendingPublications > 0 ? ` (+${c.pendingPublications} awaiting integration)` : ''}; deliveries to its agencies in the log ${c.deliveries}${c.pendingDeliveries > 0 ? ` (+${c.pendingDeliveries} awaiting integration)` : ''}; ${result.cosignedNow ? `cosigned size ${result.treeSize}` : 'nothing new to cosign'}`,
      ...result.notices.map((notice) => `  note: ${notice}`),
    ],
    err: [],
  };
}

function report(result: RoundResult, member: MemberId): void {
  const lines = roundLines(result, member);
  for (const line of lines.out) console.log(line);
  for (const line of lines.err) console.error(line);
}

/** A tlog-proof of one of the node's publications, as `node audit proof` writes it. */
export interface PublicationProofResult {
  readonly proof: string;
  readonly receipt: Uint8Array;
  readonly index: bigint;
  readonly treeSize: bigint;
  readonly final: boolean;
  /** True when the hub could not be reached and the proof stored by the monitor was used. */
  readonly fromStore: boolean;
}

/**
 * Fetches and checks the inclusion proof of the node's PUBLISH event for `bulletinId`, under the
 * latest final checkpoint when that covers it (else the latest), and stores it beside the receipt.
 * @throws CorridorError `NOT_FOUND` for a bulletin the node did not publish; `PROOF_INVALID` when
 * what the hub serves does not verify (run the monitor: it keeps evidence).
 */
export async function publicationProof(config: NodeConfig, bulletinId: string, log: Logger): Promise<PublicationProofResult> {
  const region = await readRegionFile(config.home);
  const trust = logTrustOf(region);
  const opened = await openNodeRecords(config, region, log);
  try {
    const publication = (await opened.records.publications()).find((p) => p.bulletinId === bulletinId);
    if (publication === undefined) fail('NOT_FOUND', `node ${config.member} holds no receipt for ${bulletinId}; \`corridor node status ${bulletinId} --member ${config.member}\` says where it is`);
    const index = BigInt(publication.claims.audit_position) - 1n;
    let hub: HubConnection | undefined;
    try {
      hub = connectHub(config.hubAddress, await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca), { 'grpc.use_local_subchannel_pool': 1 });
      const client = hubLogClient(hub);
      const final = await client.checkpoint({ final: true }).catch((error: unknown) => {
        // No checkpoint has reached the quorum yet.
        if (error instanceof CorridorError && error.code === 'TREE_SIZE_UNAVAILABLE') return undefined;
        throw error;
      });
      const chosen = final !== undefined && final.treeSize > index ? final : await client.checkpoint({});
      const checkpoint = openWitnessed(new TextEncoder().encode(chosen.checkpoint), trust).opened;
      const size = checkpoint.checkpoint.size;
      if (index >= size) fail('TREE_SIZE_UNAVAILABLE', `${bulletinId} (leaf ${index}) is not integrated yet (signed size ${size}); try again shortly`);
      const verified = (await loadMonitorState(memberAuditDir(config.home, config.member), config.member, trust)).verified;
      if (verified !== undefined && verified.head.size === size && !sameBytes(verified.head.rootHash, checkpoint.checkpoint.rootHash)) {
        fail('PROOF_INVALID', `the hub signed another root for tree size ${size} than the one this node verified; run \`corridor node audit monitor --once\` to keep the evidence`);
      }
      const [entry] = await client.entries(index, index + 1n);
      if (entry === undefined || entry.withheld || entry.leafBytes.byteLength === 0) fail('PROOF_INVALID', `the hub does not serve leaf ${index}, this node's PUBLISH event`);
      const hash = leafHash(entry.leafBytes);
      const problems = publicationMismatches(decodeLeaf(entry.leafBytes), hash, {
        member: config.member,
        bulletinId,
        jwsSha256: Buffer.from(publication.claims.bulletin_sha256, 'base64url'),
        leafHash: Buffer.from(publication.claims.leaf_hash, 'base64url'),
      });
      if (problems.length > 0) fail('PROOF_INVALID', `leaf ${index} is not the PUBLISH event of ${bulletinId}: ${problems.join('; ')}; run \`corridor node audit monitor --once\` to keep the evidence`);
      const path = await client.inclusionProof(index, size);
      verifyInclusion(index, size, hash, path, checkpoint.checkpoint.rootHash);
      const proof = formatTlogProof({ extra: entry.leafBytes, index, proof: path, checkpoint: chosen.checkpoint });
      const proved = verifyPublicationProof(proof, publication.claims, trust);
      await opened.records.storeProof(bulletinId, proof);
      return { proof, receipt: publication.receipt, index, treeSize: size, final: proved.final, fromStore: false };
    } catch (error) {
      const stored = error instanceof CorridorError && error.code === 'HUB_UNAVAILABLE' ? await opened.records.storedProof(bulletinId) : undefined;
      if (stored === undefined) throw error;
      const proved = verifyPublicationProof(stored, publication.claims, trust);
      return { proof: stored, receipt: publication.receipt, index, treeSize: proved.treeSize, final: proved.final, fromStore: true };
    } finally {
      hub?.close();
    }
  } finally {
    await opened.close();
  }
}

function positive(value: string, flag: string, allowZero: boolean): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1)) throw new CorridorError('CONFIG_INVALID', `${flag} must be a whole number of milliseconds${allowZero ? '' : ' above 0'}`);
  return n;
}
