/**
 * The member node's side of the verifiable audit log: a monitor and a witness.
 *
 * One round ({@link runMonitorRound}):
 *  1. fetch the hub's latest checkpoint and open it with the log key pinned in the region file
 *     (never a key or an address the hub names);
 *  2. relate it to the last checkpoint this node verified (kept in its audit directory as the
 *     exact signed note): the same size must have the same root, a log never shrinks, and a
 *     larger tree must come with a valid RFC 9162 consistency proof;
 *  3. read every new entry, check each visible leaf against its hash, and fold all the hashes
 *     into the compact range of the verified tree: the result must be the signed root, so the
 *     entries the hub serves are exactly the tree it signed;
 *  4. prove the inclusion of every new event about the member (its leaf hash, recomputed from
 *     the leaf bytes, under the new root);
 *  5. cross-check the node's own records: each publish receipt must be that PUBLISH event at its
 *     position (re-read every round, so a row rewritten after integration is caught), each
 *     delivery its agencies stored must be a DELIVER event, every key event about the member must
 *     be for a key it holds or proposed; agreement changes are reported;
 *  6. as a witness, cosign the new checkpoint only once all of that held, and only if it is
 *     consistent with the last checkpoint this node cosigned (C2SP tlog-witness rules), then
 *     send the cosignature to the hub;
 *  7. keep the checkpoint (with the cosignatures the hub now serves) as the last verified one,
 *     and the inclusion proofs of new publications beside their receipts (C2SP tlog-proof).
 *
 * Any failure of 2–5 is an alarm: nothing is cosigned, the last verified checkpoint is kept as
 * it was, and an evidence directory holds the conflicting signed checkpoints verbatim, the proof
 * received and a summary. A hub that cannot be reached is not an alarm, only a failed round.
 *
 * Attacker-controlled input: everything the hub sends.
 */
import { sameBytes } from '../core/bytes.js';
import { create } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { EventKind, leafConcernsMember, leafHash } from '../core/audit-leaf.js';
import { cosign } from '../core/checkpoint.js';
import type { CosignatureSigner } from '../core/checkpoint.js';
import type { Clock } from '../core/clock.js';
import { CorridorError } from '../core/errors.js';
import { printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { importVerificationKey } from '../core/jws.js';
import { readRotationStatement, verifyRotationStatement } from '../core/key-statement.js';
import { KEY_EVENT_KINDS, decodeLeaf, logTrustOf, openWitnessed, publicationMismatches, stepOf } from '../core/log-monitor.js';
import type { LogTrust, TreeHead, WitnessedCheckpoint } from '../core/log-monitor.js';
import { EMPTY_ROOT, Frontier, verifyInclusion } from '../core/merkle.js';
import { toBase64 } from '../core/note.js';
import type { Region } from '../core/region.js';
import { formatTlogProof } from '../core/tlog-proof.js';
import {
  AddCosignatureRequestSchema,
  AuditService,
  GetCheckpointRequestSchema,
  GetConsistencyProofRequestSchema,
  GetEntriesRequestSchema,
  GetInclusionProofRequestSchema,
} from '../gen/corridor/v1/audit_pb.js';
import type { AuditLeaf, GetCheckpointResponse, LogEntry } from '../gen/corridor/v1/audit_pb.js';
import { DirectoryService, GetKeyDirectoryRequestSchema } from '../gen/corridor/v1/directory_pb.js';
import type { MemberKey } from '../gen/corridor/v1/directory_pb.js';
import { GetAgreementRequestSchema, ListAgreementsRequestSchema, PolicyService } from '../gen/corridor/v1/policy_pb.js';
import type { AgreementVersion } from '../gen/corridor/v1/policy_pb.js';
import type { OwnPublication, OwnRecords } from './audit-records.js';
import { INITIAL_STATE, loadMonitorState, lockMonitor, saveMonitorState, verifiedHead, writeEvidence } from './audit-state.js';
import type { CosignedCheckpoint, MonitorState, OwnKey, SeenDelivery } from './audit-state.js';
import { callErrorToCorridorError } from './hub-errors.js';
import type { HubConnection } from './hub-client.js';

/** Entries asked for per call (the hub serves at most 1000). */
const ENTRIES_PER_CALL = 1000n;
/** Inclusion proofs asked for at once. */
const PROOF_CONCURRENCY = 8;

// ---------------------------------------------------------------------------------------------
// The hub, as the monitor uses it

/** The hub's audit log and what the monitor cross-checks it with. Every answer is untrusted. */
export interface LogClient {
  /** The latest checkpoint (`treeSize` 0), the one of a size, or the latest final one. */
  checkpoint(request: { readonly treeSize?: bigint; readonly final?: boolean }): Promise<GetCheckpointResponse>;
  consistencyProof(first: bigint, second: bigint): Promise<readonly Uint8Array[]>;
  inclusionProof(index: bigint, treeSize: bigint): Promise<readonly Uint8Array[]>;
  entries(start: bigint, end: bigint): Promise<readonly LogEntry[]>;
  addCosignature(body: string, signatureLine: string): Promise<{ readonly cosignatures: number; readonly final: boolean }>;
  /** The member's keys in the hub's key directory. */
  memberKeys(member: MemberId): Promise<readonly MemberKey[]>;
  /** The latest version of each agreement the member is party to, ended ones included. */
  agreements(): Promise<readonly AgreementVersion[]>;
  agreementVersions(agreementId: string): Promise<readonly AgreementVersion[]>;
}

/** The log client over the node's mTLS connection to the hub; failures become coded errors. */
export function hubLogClient(hub: HubConnection, deadlineMs = 15_000): LogClient {
  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw callErrorToCorridorError(error, `the hub (${what})`);
    }
  };
  const options = { deadlineMs };
  return {
    checkpoint: (request) =>
      call('GetCheckpoint', () => hub.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { treeSize: request.treeSize ?? 0n, final: request.final ?? false }), options)),
    consistencyProof: async (firstSize, secondSize) =>
      (await call('GetConsistencyProof', () => hub.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize, secondSize }), options))).proof,
    inclusionProof: async (index, treeSize) =>
      (await call('GetInclusionProof', () => hub.audit.unary(AuditService.method.getInclusionProof, create(GetInclusionProofRequestSchema, { leaf: { case: 'index', value: index }, treeSize }), options))).proof,
    entries: async (start, end) => (await call('GetEntries', () => hub.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start, end }), options))).entries,
    addCosignature: (checkpoint, signatureLine) =>
      call('AddCosignature', () => hub.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint, signatureLine }), options)),
    memberKeys: async (member) =>
      (await call('GetKeyDirectory', () => hub.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, { memberId: member }), options))).memberKeys,
    agreements: async () =>
      (await call('ListAgreements', () => hub.policy.unary(PolicyService.method.listAgreements, create(ListAgreementsRequestSchema, { includeInactive: true }), options))).agreements,
    agreementVersions: async (agreementId) =>
      (await call('GetAgreement', () => hub.policy.unary(PolicyService.method.getAgreement, create(GetAgreementRequestSchema, { agreementId }), options))).versions,
  };
}

// ---------------------------------------------------------------------------------------------
// Rounds

/** What an alarm is about. */
export type AlarmCode =
  /** The checkpoint does not verify with the pinned log key, or is for another log. */
  | 'LOG_SIGNATURE_INVALID'
  /** Two different roots for one tree size. */
  | 'SPLIT_VIEW'
  /** A smaller tree than one signed before. */
  | 'LOG_SHRANK'
  /** A larger tree whose consistency proof does not verify. */
  | 'LOG_INCONSISTENT'
  /** Entries that are not the leaves of the signed tree. */
  | 'ENTRIES_DO_NOT_MATCH'
  /** An inclusion proof of the member's own event that does not verify. */
  | 'INCLUSION_FAILED'
  /** The hub cannot serve entries or proofs of a tree it signed. */
  | 'LOG_UNSERVABLE'
  /** An event the node's own records require is not in the log. */
  | 'OWN_EVENT_MISSING'
  /** The log holds something else where the node's records put its event. */
  | 'OWN_EVENT_MISMATCH'
  /** A key of the member changed (or was used) that the node does not hold and did not propose. */
  | 'UNEXPECTED_KEY_CHANGE';

export interface Alarm {
  readonly code: AlarmCode;
  /** One line that says what is wrong. */
  readonly message: string;
  readonly details: readonly string[];
}

/** A checkpoint verified in a round, as reported to people. */
export interface VerifiedRound {
  readonly kind: 'verified';
  readonly origin: string;
  readonly previousSize: bigint;
  readonly treeSize: bigint;
  readonly rootHash: Uint8Array;
  /** Member states whose cosignatures on it verified. */
  readonly cosignedBy: readonly MemberId[];
  readonly quorum: number;
  readonly final: boolean;
  /** Whether this node's witness cosigned it in this round. */
  readonly cosignedNow: boolean;
  readonly checked: {
    readonly newEntries: bigint;
    /** New events about the member whose inclusion was proved. */
    readonly ownEvents: number;
    readonly publications: number;
    readonly pendingPublications: number;
    readonly deliveries: number;
    readonly pendingDeliveries: number;
  };
  /** Things worth a person's attention that are not alarms (agreement changes, key events on the member's own keys). */
  readonly notices: readonly string[];
}

export type RoundResult = VerifiedRound | { readonly kind: 'alarm'; readonly alarm: Alarm; readonly evidenceDir: string };

export interface MonitorDeps {
  readonly member: MemberId;
  /** The region file: the only source of the log key, origin, quorum and witness keys. */
  readonly region: Region;
  /** The member's audit directory (`memberAuditDir`). */
  readonly dir: string;
  readonly log: LogClient;
  readonly records: OwnRecords;
  /** The member's witness key; without it the node monitors but does not cosign. */
  readonly witness: CosignatureSigner | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * How long the hub may take to integrate an event into a signed checkpoint (the C2SP / CT
   * maximum merge delay): a receipt or a delivery older than this whose event is not in the log
   * is an alarm.
   */
  readonly maxMergeDelayMs: number;
}

/** Raised inside a round; turned into a result with its evidence. */
class AlarmRaised extends Error {
  constructor(
    readonly alarm: Alarm,
    readonly files: ReadonlyMap<string, string | Uint8Array>,
    readonly facts: Record<string, unknown>,
  ) {
    super(alarm.message);
  }
}

/**
 * Runs one monitor round for `deps.member`. Resolves with the verified checkpoint or with an alarm
 * (its evidence written); rejects only when the round could not be completed (the hub unreachable,
 * the local state unreadable), in which case nothing was changed.
 */
export async function runMonitorRound(deps: MonitorDeps): Promise<RoundResult> {
  const release = await lockMonitor(deps.dir);
  try {
    return await new Round(deps, logTrustOf(deps.region)).run();
  } catch (error) {
    if (!(error instanceof AlarmRaised)) throw error;
    const at = deps.clock.now();
    const evidenceDir = await writeEvidence(deps.dir, at, {
      code: error.alarm.code,
      summary: { alarm: error.alarm.code, message: error.alarm.message, details: error.alarm.details, member: deps.member, at: at.toISOString(), ...error.facts },
      files: error.files,
    });
    deps.logger.error({ code: error.alarm.code, evidence: evidenceDir }, error.alarm.message);
    return { kind: 'alarm', alarm: error.alarm, evidenceDir };
  } finally {
    await release();
  }
}

/** A leaf about the member, seen in this round's new range, with its bytes and recomputed hash. */
interface OwnLeaf {
  readonly index: bigint;
  readonly bytes: Uint8Array;
  readonly hash: Uint8Array;
  readonly leaf: AuditLeaf;
}

class Round {
  readonly #deps: MonitorDeps;
  readonly #trust: LogTrust;
  readonly #notices: string[] = [];
  #state: MonitorState = INITIAL_STATE;
  #received = '';

  constructor(deps: MonitorDeps, trust: LogTrust) {
    this.#deps = deps;
    this.#trust = trust;
  }

  async run(): Promise<VerifiedRound> {
    const deps = this.#deps;
    const member = deps.member;
    this.#state = await loadMonitorState(deps.dir, member, this.#trust);
    const previous = verifiedHead(this.#state);

    // 1. The latest checkpoint, under the pinned key only.
    const latest = await deps.log.checkpoint({});
    this.#received = latest.checkpoint;
    const witnessed = this.#open(latest.checkpoint);
    const opened = witnessed.opened;
    const next: TreeHead = { size: opened.checkpoint.size, rootHash: opened.checkpoint.rootHash };

    // 2. Consistency with the last verified checkpoint.
    const proof = next.size > previous.size && previous.size > 0n ? await this.#served('the consistency proof', () => deps.log.consistencyProof(previous.size, next.size)) : [];
    this.#requireStep(previous, next, proof, this.#state.verified?.note, 'verified');

    // 3. Every new entry, folded into the verified tree: it must give the signed root.
    const { frontier, own } = await this.#replay(previous, next);

    // 4. Inclusion of every new event about the member.
    const proofs = await this.#proveIncluded(own, next);

    // 5. The node's own records against the log.
    const ownKeys = await this.#checkKeys(own);
    const publications = await this.#checkPublications(own, next, proofs);
    const deliveries = await this.#checkDeliveries(own, next);
    if (next.size > previous.size) await this.#reportAgreements(previous, next, own);

    // 6. Witness: cosign only now, and only what extends what this node cosigned before.
    const witness = await this.#witness(witnessed, next, previous, proof);

    // 7. The checkpoint with the cosignatures the hub now serves becomes the last verified one.
    const note = witness.cosignedNow ? await this.#refetch(next) : latest.checkpoint;
    const finality = this.#open(note);
    if (finality.invalid.length > 0) this.#notices.push(`the hub serves cosignature lines that do not verify (ignored): ${finality.invalid.map((name) => printable(name, 60)).join(', ')}`);
    for (const proven of publications.proven) {
      const text = formatTlogProof({ extra: proven.bytes, index: proven.index, proof: proven.proof, checkpoint: note });
      await deps.records.storeProof(proven.bulletinId, text).catch((error: unknown) => {
        this.#notices.push(`could not store the inclusion proof of ${proven.bulletinId}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    const proven = new Set(this.#state.proven);
    for (const p of publications.proven) proven.add(p.bulletinId);
    this.#state = { verified: { note, head: next, frontier }, cosigned: witness.cosigned, deliveries: deliveries.seen, ownKeys, proven };
    await saveMonitorState(deps.dir, member, this.#trust, this.#state);
    return {
      kind: 'verified',
      origin: opened.checkpoint.origin,
      previousSize: previous.size,
      treeSize: next.size,
      rootHash: next.rootHash,
      cosignedBy: finality.cosignedBy,
      quorum: this.#trust.quorum,
      final: finality.final,
      cosignedNow: witness.cosignedNow,
      checked: {
        newEntries: next.size - previous.size,
        ownEvents: own.length,
        publications: publications.inLog,
        pendingPublications: publications.pending,
        deliveries: deliveries.inLog,
        pendingDeliveries: deliveries.pending,
      },
      notices: this.#notices,
    };
  }

  // -- alarms -------------------------------------------------------------------------------

  #alarm(code: AlarmCode, message: string, details: readonly string[], files: Record<string, string | Uint8Array> = {}, facts: Record<string, unknown> = {}): never {
    const kept = new Map<string, string | Uint8Array>();
    if (this.#state.verified !== undefined) kept.set('verified.checkpoint', this.#state.verified.note);
    if (this.#received !== '') kept.set('received.checkpoint', this.#received);
    for (const [name, content] of Object.entries(files)) kept.set(name, content);
    throw new AlarmRaised({ code, message, details: [...details, 'nothing was cosigned, and the last verified checkpoint is kept as it was'] }, kept, facts);
  }

  /** Opens a note with the pinned trust, or alarms: a note the log key did not sign is never believed. */
  #open(note: string): WitnessedCheckpoint {
    try {
      return openWitnessed(new TextEncoder().encode(note), this.#trust);
    } catch (error) {
      if (!(error instanceof CorridorError)) throw error;
      return this.#alarm('LOG_SIGNATURE_INVALID', `the hub served a checkpoint that does not verify with the log key pinned in the region file: ${error.message}`, [
        `expected origin ${this.#trust.trust.origin}, signed by the log key ${this.#deps.region.audit?.logKey ?? '(none pinned)'}`,
      ]);
    }
  }

  /** A call that must succeed for a tree the hub signed: the hub saying its own log is broken is an alarm. */
  async #served<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof CorridorError && error.code === 'LOG_INCONSISTENT') {
        this.#alarm('LOG_UNSERVABLE', `the hub cannot serve ${what} of the tree it signed: ${error.message}`, ['its stored log no longer matches its signed checkpoints (rows changed, removed or inserted)']);
      }
      throw error;
    }
  }

  #requireStep(previous: TreeHead, next: TreeHead, proof: readonly Uint8Array[], previousNote: string | undefined, previousName: 'verified' | 'cosigned'): void {
    const step = stepOf(previous, next, proof);
    if (step.kind === 'unchanged' || step.kind === 'grown') return;
    const code: AlarmCode = step.kind === 'fork' ? 'SPLIT_VIEW' : step.kind === 'shrunk' ? 'LOG_SHRANK' : 'LOG_INCONSISTENT';
    const files: Record<string, string> = { 'consistency-proof.txt': proof.map((hash) => toBase64(hash)).join('\n') + (proof.length > 0 ? '\n' : '') };
    if (previousName === 'cosigned' && previousNote !== undefined) files['cosigned.checkpoint'] = previousNote;
    this.#alarm(
      code,
      step.message,
      [
        `${previousName}: size ${previous.size}, root ${toBase64(previous.rootHash)}`,
        `received: size ${next.size}, root ${toBase64(next.rootHash)}`,
        'both signed checkpoints are kept: together they prove the hub signed conflicting trees',
      ],
      files,
      { previous: headFacts(previous), received: headFacts(next), proof: proof.map((hash) => toBase64(hash)) },
    );
  }

  // -- 3. entries ---------------------------------------------------------------------------

  async #replay(previous: TreeHead, next: TreeHead): Promise<{ frontier: Frontier; own: OwnLeaf[] }> {
    const deps = this.#deps;
    let frontier = this.#state.verified?.frontier ?? Frontier.EMPTY;
    const own: OwnLeaf[] = [];
    for (let start = previous.size; start < next.size; start += ENTRIES_PER_CALL) {
      const end = start + ENTRIES_PER_CALL < next.size ? start + ENTRIES_PER_CALL : next.size;
      const entries = await this.#served(`entries [${start}, ${end})`, () => deps.log.entries(start, end));
      if (entries.length !== Number(end - start)) {
        this.#alarm('ENTRIES_DO_NOT_MATCH', `the hub served ${entries.length} entries for [${start}, ${end}) of the tree it signed`, []);
      }
      for (const [i, entry] of entries.entries()) {
        const index = start + BigInt(i);
        if (entry.index !== index || entry.leafHash.byteLength !== 32) {
          this.#alarm('ENTRIES_DO_NOT_MATCH', `the hub served entry ${entry.index} (or a malformed hash) where leaf ${index} belongs`, []);
        }
        if (!entry.withheld && entry.leafBytes.byteLength > 0) {
          const hash = leafHash(entry.leafBytes);
          if (!sameBytes(hash, entry.leafHash)) {
            this.#alarm('ENTRIES_DO_NOT_MATCH', `the leaf the hub served at index ${index} does not hash to the leaf hash it states`, [`stated ${toBase64(entry.leafHash)}, computed ${toBase64(hash)}`], {
              'entry.leaf': entry.leafBytes,
            });
          }
          let leaf: AuditLeaf;
          try {
            leaf = decodeLeaf(entry.leafBytes);
          } catch {
            return this.#alarm('ENTRIES_DO_NOT_MATCH', `the leaf the hub served at index ${index} is not an audit event`, [], { 'entry.leaf': entry.leafBytes });
          }
          if (leafConcernsMember(leaf, deps.member)) own.push({ index, bytes: entry.leafBytes, hash, leaf });
        }
        frontier = frontier.append(entry.leafHash).frontier;
      }
    }
    if (!sameBytes(frontier.root(), next.rootHash)) {
      this.#alarm(
        'ENTRIES_DO_NOT_MATCH',
        `the entries the hub serves for [${previous.size}, ${next.size}) do not make up the tree it signed at size ${next.size}`,
        [`their root is ${toBase64(frontier.root())}; the checkpoint states ${toBase64(next.rootHash)}`, 'an entry was changed, removed or inserted after it was logged'],
      );
    }
    return { frontier, own };
  }

  // -- 4. inclusion -------------------------------------------------------------------------

  async #proveIncluded(own: readonly OwnLeaf[], next: TreeHead): Promise<Map<bigint, readonly Uint8Array[]>> {
    const proofs = new Map<bigint, readonly Uint8Array[]>();
    await inBatches(own, PROOF_CONCURRENCY, async (event) => {
      proofs.set(event.index, await this.#proveOne(event.index, event.hash, next, describeLeaf(event.leaf)));
    });
    return proofs;
  }

  async #proveOne(index: bigint, hash: Uint8Array, next: TreeHead, what: string): Promise<readonly Uint8Array[]> {
    const proof = await this.#served(`the inclusion proof of leaf ${index}`, () => this.#deps.log.inclusionProof(index, next.size));
    try {
      verifyInclusion(index, next.size, hash, proof, next.rootHash);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#alarm('INCLUSION_FAILED', `the hub's inclusion proof of ${what} (leaf ${index}) does not verify under the root of size ${next.size}: ${reason}`, [], {
        'inclusion-proof.txt': `index ${index}\n${proof.map((h) => toBase64(h)).join('\n')}\n`,
      });
    }
    return proof;
  }

  // -- 5. own records -----------------------------------------------------------------------

  async #checkKeys(own: readonly OwnLeaf[]): Promise<Map<string, OwnKey>> {
    const deps = this.#deps;
    const member = deps.member;
    const keys = new Map(this.#state.ownKeys);
    for (const held of await deps.records.heldKeys()) keys.set(held.kid, { ...held, source: 'held' });
    let directory: readonly MemberKey[] | undefined;
    for (const event of own) {
      const { leaf } = event;
      if (leaf.kind === EventKind.BULLETIN_MARKED && leaf.memberId === member) {
        this.#notices.push(`${printable(leaf.bulletinId, 80)} is marked (log index ${event.index}): it was signed with key ${printable(leaf.objectId, 60)}, revoked as compromised`);
      }
      const isKeyEvent = KEY_EVENT_KINDS.has(leaf.kind) && leaf.memberId === member;
      const isOwnPublication = leaf.kind === EventKind.PUBLISH && leaf.actor === `member:${member}`;
      if (!isKeyEvent && !isOwnPublication) continue;
      const kid = leaf.objectId;
      if (!keys.has(kid)) {
        directory ??= await deps.log.memberKeys(member);
        const proposed = await proposedBy(directory.find((k) => k.kid === kid && k.memberId === member), keys, member);
        if (proposed === undefined) {
          this.#alarm(
            'UNEXPECTED_KEY_CHANGE',
            isOwnPublication
              ? `bulletin ${printable(leaf.bulletinId, 80)} was published as ${member} with signing key ${printable(kid, 60)}, which this node does not hold and did not propose (log index ${event.index})`
              : `${kindName(leaf.kind)} of signing key ${printable(kid, 60)} for ${member} at log index ${event.index}: a key change this node did not make (it does not hold that key and did not propose it)`,
            [`by ${printable(leaf.actor, 80)} at hub time ${new Date(Number(leaf.hubTimeMs)).toISOString()}`, `keys this node holds or proposed: ${[...keys.keys()].join(', ') || 'none'}`],
            { 'event.leaf': event.bytes },
            { index: event.index.toString(), kind: kindName(leaf.kind), kid },
          );
        }
        keys.set(kid, proposed);
        this.#notices.push(`signing key ${kid} of ${member} is one this node proposed (its rotation statement is signed with a key this node holds)`);
      }
      if (isKeyEvent && (leaf.kind === EventKind.KEY_REVOKED || leaf.kind === EventKind.KEY_REJECTED)) {
        this.#notices.push(`${kindName(leaf.kind)}: signing key ${kid} of ${member} (log index ${event.index}, by ${printable(leaf.actor, 60)}, code ${printable(leaf.code, 40)})`);
      }
    }
    return keys;
  }

  async #checkPublications(
    own: readonly OwnLeaf[],
    next: TreeHead,
    proofs: ReadonlyMap<bigint, readonly Uint8Array[]>,
  ): Promise<{ inLog: number; pending: number; proven: { bulletinId: string; index: bigint; bytes: Uint8Array; proof: readonly Uint8Array[] }[] }> {
    const deps = this.#deps;
    const member = deps.member;
    const publications = await deps.records.publications();
    const nowMs = deps.clock.now().getTime();
    const inTree = publications.filter((p) => BigInt(p.claims.audit_position) - 1n < next.size);
    let pending = 0;
    for (const p of publications) {
      if (BigInt(p.claims.audit_position) - 1n < next.size) continue;
      pending++;
      if (nowMs - p.claims.hub_time_ms > deps.maxMergeDelayMs) {
        this.#alarm(
          'OWN_EVENT_MISSING',
          `${p.bulletinId} was accepted at ${new Date(p.claims.hub_time_ms).toISOString()} at audit position ${p.claims.audit_position}, but the log has still not integrated it (signed size ${next.size})`,
          [`the hub promised inclusion with its receipt; the maximum merge delay is ${deps.maxMergeDelayMs} ms`, 'the event may have been removed or the log stopped growing'],
          { 'receipt.jwt': p.receipt },
          { bulletinId: p.bulletinId, auditPosition: p.claims.audit_position },
        );
      }
    }

    // Re-read every receipt's entry each round: a row rewritten after integration is caught here.
    const known = new Map(own.map((event) => [event.index, event]));
    const needed = inTree.map((p) => BigInt(p.claims.audit_position) - 1n).filter((index) => !known.has(index));
    const fetched = await this.#entriesAt(needed);
    const proven: { bulletinId: string; index: bigint; bytes: Uint8Array; proof: readonly Uint8Array[] }[] = [];
    for (const p of inTree) {
      const index = BigInt(p.claims.audit_position) - 1n;
      const entry = known.get(index) ?? fetched.get(index);
      if (entry === undefined) {
        this.#alarm('OWN_EVENT_MISSING', `the hub withholds log index ${index}, where the receipt of ${p.bulletinId} puts this node's PUBLISH event`, [], { 'receipt.jwt': p.receipt });
      }
      const problems = publicationMismatches(entry.leaf, entry.hash, {
        member,
        bulletinId: p.bulletinId,
        jwsSha256: Buffer.from(p.claims.bulletin_sha256, 'base64url'),
        leafHash: Buffer.from(p.claims.leaf_hash, 'base64url'),
      });
      if (p.claims.sub !== p.bulletinId) problems.push(`the receipt names ${printable(p.claims.sub, 80)}`);
      if (!sameBytes(p.jwsSha256, Buffer.from(p.claims.bulletin_sha256, 'base64url'))) problems.push('the receipt digest is not of the bytes this node holds as published');
      if (problems.length > 0) {
        this.#alarm('OWN_EVENT_MISMATCH', `log index ${index} is not the PUBLISH event of ${p.bulletinId} that the hub's receipt promised`, problems, { 'receipt.jwt': p.receipt, 'entry.leaf': entry.bytes }, {
          bulletinId: p.bulletinId,
          index: index.toString(),
        });
      }
      if (!this.#state.proven.has(p.bulletinId) || !p.hasProof) {
        const proof = proofs.get(index) ?? (await this.#proveOne(index, entry.hash, next, `the PUBLISH event of ${p.bulletinId}`));
        proven.push({ bulletinId: p.bulletinId, index, bytes: entry.bytes, proof });
      }
    }

    const recorded = new Set(publications.map((p) => p.bulletinId));
    for (const event of own) {
      if (event.leaf.kind === EventKind.PUBLISH && event.leaf.actor === `member:${member}` && !recorded.has(event.leaf.bulletinId)) {
        this.#notices.push(
          `${printable(event.leaf.bulletinId, 80)} was published as ${member} (log index ${event.index}) but is not in this node's outbox: published directly (\`node publish --direct\`) or by another holder of the member's certificate`,
        );
      }
    }
    return { inLog: inTree.length, pending, proven };
  }

  /** The leaves at `indices` (each must be visible to the member), read in windows of consecutive entries. */
  async #entriesAt(indices: readonly bigint[]): Promise<Map<bigint, OwnLeaf | undefined>> {
    const found = new Map<bigint, OwnLeaf | undefined>();
    const sorted = [...new Set(indices)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let i = 0;
    while (i < sorted.length) {
      const start = sorted[i] ?? 0n;
      let j = i;
      while (j + 1 < sorted.length && (sorted[j + 1] ?? 0n) < start + ENTRIES_PER_CALL) j++;
      const end = (sorted[j] ?? start) + 1n;
      const entries = await this.#served(`entries [${start}, ${end})`, () => this.#deps.log.entries(start, end));
      for (const entry of entries) {
        if (entry.withheld || entry.leafBytes.byteLength === 0) {
          found.set(entry.index, undefined);
          continue;
        }
        const hash = leafHash(entry.leafBytes);
        if (!sameBytes(hash, entry.leafHash)) {
          this.#alarm('ENTRIES_DO_NOT_MATCH', `the leaf the hub served at index ${entry.index} does not hash to the leaf hash it states`, [`stated ${toBase64(entry.leafHash)}, computed ${toBase64(hash)}`], {
            'entry.leaf': entry.leafBytes,
          });
        }
        let leaf: AuditLeaf;
        try {
          leaf = decodeLeaf(entry.leafBytes);
        } catch {
          return this.#alarm('OWN_EVENT_MISMATCH', `the leaf the hub served at index ${entry.index} is not an audit event`, [], { 'entry.leaf': entry.leafBytes });
        }
        found.set(entry.index, { index: entry.index, bytes: entry.leafBytes, hash, leaf });
      }
      i = j + 1;
    }
    return found;
  }

  async #checkDeliveries(own: readonly OwnLeaf[], next: TreeHead): Promise<{ seen: Map<string, SeenDelivery>; inLog: number; pending: number }> {
    const deps = this.#deps;
    const seen = new Map(this.#state.deliveries);
    for (const event of own) {
      if (event.leaf.kind === EventKind.DELIVER && event.leaf.agencyId.startsWith(`${deps.member}:`)) {
        seen.set(`${event.leaf.agencyId} ${event.leaf.bulletinId}`, { index: event.index, digest: event.leaf.objectDigest });
      }
    }
    const nowMs = deps.clock.now().getTime();
    // The decisions of one publication follow its PUBLISH event in the same transaction, one per agency.
    const decisionsPerPublication = BigInt(deps.region.agencies.length);
    let inLog = 0;
    let pending = 0;
    for (const delivery of await deps.records.deliveries()) {
      const logged = seen.get(`${delivery.agency} ${delivery.bulletinId}`);
      if (logged !== undefined) {
        if (!sameBytes(logged.digest, delivery.sdHash) || logged.index < delivery.publishPosition) {
          this.#alarm(
            'OWN_EVENT_MISMATCH',
            `${delivery.agency} stored ${delivery.bulletinId}, but the DELIVER event at log index ${logged.index} records another presentation`,
            [`logged sd_hash ${toBase64(logged.digest)}, received ${toBase64(delivery.sdHash)}`],
            {},
            { agency: delivery.agency, bulletinId: delivery.bulletinId, index: logged.index.toString() },
          );
        }
        inLog++;
        continue;
      }
      const due = next.size >= delivery.publishPosition + decisionsPerPublication || nowMs - delivery.receivedAt.getTime() > deps.maxMergeDelayMs;
      if (!due) {
        pending++;
        continue;
      }
      this.#alarm(
        'OWN_EVENT_MISSING',
        `${delivery.agency} received ${delivery.bulletinId} (published at audit position ${delivery.publishPosition}), but the log up to size ${next.size} has no DELIVER event for it`,
        ['the hub released a bulletin without recording the release, or removed the record'],
        {},
        { agency: delivery.agency, bulletinId: delivery.bulletinId },
      );
    }
    return { seen, inLog, pending };
  }

  /** Agreement changes concerning the member, recorded in the new part of the log: reported, not alarmed. */
  async #reportAgreements(previous: TreeHead, next: TreeHead, own: readonly OwnLeaf[]): Promise<void> {
    const inRange = (position: bigint): boolean => position > previous.size && position <= next.size;
    for (const event of own) {
      if (event.leaf.kind === EventKind.AGREEMENT_CHANGE) this.#notices.push(`agreement change ${printable(event.leaf.objectId, 80)} (log index ${event.index}, ${printable(event.leaf.code, 40)})`);
    }
    try {
      for (const latest of await this.#deps.log.agreements()) {
        if (latest.auditPosition <= previous.size) continue;
        const versions = latest.version > 1 ? await this.#deps.log.agreementVersions(latest.agreementId) : [latest];
        for (const version of versions) {
          if (!inRange(version.auditPosition)) continue;
          this.#notices.push(
            `agreement ${printable(version.agreementId, 60)}@${version.version} ${version.ended ? 'ended' : version.version === 1 ? 'added' : 'amended'} by ${printable(version.operator, 60)} (audit position ${version.auditPosition})`,
          );
        }
      }
    } catch (error) {
      this.#notices.push(`could not list the agreements this member is party to: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  // -- 6. witness ---------------------------------------------------------------------------

  async #witness(witnessed: WitnessedCheckpoint, next: TreeHead, previous: TreeHead, proof: readonly Uint8Array[]): Promise<{ cosigned: CosignedCheckpoint | undefined; cosignedNow: boolean }> {
    const opened = witnessed.opened;
    const deps = this.#deps;
    const signer = deps.witness;
    const cosigned = this.#state.cosigned;
    if (signer === undefined) return { cosigned, cosignedNow: false };
    const last: TreeHead = cosigned?.head ?? { size: 0n, rootHash: EMPTY_ROOT };
    // The witness keeps its own rule, whatever the monitor concluded: never cosign a smaller tree,
    // another root for a size it cosigned, or a tree it cannot prove extends what it cosigned.
    const sinceCosigned = next.size > last.size && last.size > 0n ? (last.size === previous.size ? proof : await this.#served('the consistency proof', () => deps.log.consistencyProof(last.size, next.size))) : [];
    this.#requireStep(last, next, sinceCosigned, cosigned === undefined ? undefined : `${cosigned.body}\n${cosigned.signatureLine}`, 'cosigned');
    const alreadyServed = witnessed.cosignedBy.includes(deps.member);
    if (next.size === last.size && cosigned !== undefined && alreadyServed) return { cosigned, cosignedNow: false };

    const signatureLine = cosign(opened.body, signer, Math.floor(deps.clock.now().getTime() / 1000));
    const updated: CosignedCheckpoint = { body: opened.body, head: next, signatureLine };
    // Recorded before it leaves the node, as a witness must: what it signed binds it.
    this.#state = { ...this.#state, cosigned: updated };
    await saveMonitorState(deps.dir, deps.member, this.#trust, this.#state);
    try {
      await deps.log.addCosignature(opened.body, signatureLine);
    } catch (error) {
      this.#notices.push(`the hub did not take this node's cosignature of size ${next.size}: ${error instanceof Error ? error.message : String(error)}`);
      return { cosigned: updated, cosignedNow: false };
    }
    return { cosigned: updated, cosignedNow: true };
  }

  /** The checkpoint of `next.size` as the hub serves it now, with the cosignatures gathered. */
  async #refetch(next: TreeHead): Promise<string> {
    let response: GetCheckpointResponse;
    try {
      response = await this.#deps.log.checkpoint({ treeSize: next.size });
    } catch (error) {
      this.#notices.push(`could not re-read the cosigned checkpoint: ${error instanceof Error ? error.message : String(error)}`);
      return this.#received;
    }
    const first = this.#received;
    const { opened } = this.#open(response.checkpoint);
    if (opened.checkpoint.size !== next.size || !sameBytes(opened.checkpoint.rootHash, next.rootHash)) {
      this.#alarm(
        'SPLIT_VIEW',
        `asked again for the checkpoint of size ${next.size}, the hub served another one (size ${opened.checkpoint.size}, root ${toBase64(opened.checkpoint.rootHash)})`,
        ['both signed checkpoints are kept: together they prove the hub signed conflicting trees'],
        { 'first.checkpoint': first, 'second.checkpoint': response.checkpoint },
      );
    }
    return response.checkpoint;
  }
}

/**
 * The own key a directory entry is, when its rotation statement is signed by a key the member
 * holds or proposed before (so only the member could have made it); undefined otherwise.
 */
async function proposedBy(entry: MemberKey | undefined, keys: ReadonlyMap<string, OwnKey>, member: MemberId): Promise<OwnKey | undefined> {
  if (entry === undefined || entry.rotationStatement.byteLength === 0) return undefined;
  try {
    const jws = readRotationStatement(entry.rotationStatement);
    const signer = keys.get(jws.header.kid);
    if (signer === undefined) return undefined;
    const rotation = await verifyRotationStatement(jws, await importVerificationKey(signer.jwk, signer.alg), member);
    if (rotation.newKid !== entry.kid) return undefined;
    return { kid: rotation.newKid, jwk: rotation.newKey, alg: rotation.newAlg, source: 'proposed' };
  } catch (error) {
    if (error instanceof CorridorError) return undefined;
    throw error;
  }
}

function kindName(kind: EventKind): string {
  return EventKind[kind] ?? `kind ${kind}`;
}

function describeLeaf(leaf: AuditLeaf): string {
  const about = leaf.bulletinId !== '' ? ` of ${printable(leaf.bulletinId, 80)}` : leaf.objectId !== '' ? ` of ${printable(leaf.objectId, 60)}` : '';
  return `the ${kindName(leaf.kind)} event${about}${leaf.agencyId !== '' ? ` for ${printable(leaf.agencyId, 40)}` : ''}`;
}

function headFacts(head: TreeHead): { size: string; rootHash: string } {
  return { size: head.size.toString(), rootHash: toBase64(head.rootHash) };
}

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

/** Re-exported for the CLI: a publication as the node's records hold it. */
export type { OwnPublication };
