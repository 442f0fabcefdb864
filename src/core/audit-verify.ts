/**
 * Verification of a whole audit log by an operator: every stored leaf rehashed, the tree rebuilt
 * from them, every checkpoint's signature checked and its root compared with the rebuilt tree at
 * its size, every leaf compared with the hash the integrator recorded for it in the level-0 tiles,
 * and every event's details checked against the commitment in its leaf. Pure: the caller feeds
 * checkpoints, then leaves in index order (with their tile hashes), then details, from wherever it
 * reads them (`corridor audit verify` reads them over gRPC).
 *
 * Finding the first bad index. Two trees are rebuilt side by side: one from the leaves as stored
 * now, one from the hashes the tiles hold (what was integrated when the log was signed). At each
 * signed checkpoint each tree either reproduces the signed root or does not, which tells which of
 * the two sources is authentic up to that size, so a disagreement between a leaf and its tile is
 * attributed exactly: the leaf was altered (inserted, renumbered), or the tile was. A row that is
 * gone is named by the caller (the hub cannot serve it). Leaves and tiles rewritten consistently
 * can only be located between two checkpoints, which is what is then reported.
 *
 * Attacker-controlled input: everything fed in. Only the trust anchors (origin, log key, witness
 * keys, quorum) come from the caller's own region file.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { AuditLeafSchema } from '../gen/corridor/v1/audit_pb.js';
import { sameBytes } from './bytes.js';
import { detailsCommitment, leafHash } from './audit-leaf.js';
import { openCheckpoint } from './checkpoint.js';
import type { CheckpointTrust } from './checkpoint.js';
import { CorridorError, fail } from './errors.js';
import { Frontier } from './merkle.js';
import { TILE_WIDTH } from './tiles.js';

/** A checkpoint as the hub lists it: the note is what is trusted, once verified. */
export interface ListedCheckpoint {
  readonly treeSize: bigint;
  readonly rootHash: Uint8Array;
  /** The hub's signed note with the cosignature lines appended. */
  readonly note: string;
}

/** One leaf as the hub serves it, or the fact that it cannot. */
export type ServedLeaf =
  | { readonly kind: 'leaf'; readonly bytes: Uint8Array; readonly storedHash: Uint8Array }
  | { readonly kind: 'missing'; readonly reason: string };

export interface LogProblem {
  /** The leaf index concerned; undefined for a problem with a checkpoint alone. */
  readonly index: bigint | undefined;
  /** The checkpoint concerned, if any. */
  readonly treeSize?: bigint;
  readonly message: string;
}

export interface LogVerifyReport {
  readonly ok: boolean;
  /** Leaves checked (the size of the largest checkpoint). */
  readonly leaves: bigint;
  readonly checkpoints: number;
  /** Checkpoints whose log signature verified. */
  readonly signedCheckpoints: number;
  /** Checkpoints with at least one valid witness cosignature, and with a quorum of them. */
  readonly cosigned: number;
  readonly final: number;
  readonly quorum: number;
  readonly latestSize: bigint;
  readonly latestRoot: Uint8Array | undefined;
  readonly latestFinalSize: bigint | undefined;
  readonly detailsChecked: number;
  /** Problems sorted by leaf index (checkpoint-only problems last), at most {@link MAX_PROBLEMS}. */
  readonly problems: readonly LogProblem[];
  /** All problems found, including those beyond the list. */
  readonly problemCount: number;
}

/** Problems kept for the report; a renumbered log would otherwise list every later leaf. */
export const MAX_PROBLEMS = 100;

interface Target {
  readonly size: bigint;
  readonly root: Uint8Array;
}

/** Verifies a log fed in order: {@link addCheckpoints}, then {@link addLeaf} for 0…n−1, then {@link checkDetails}, then {@link report}. */
export class LogVerifier {
  readonly #trust: CheckpointTrust;
  readonly #quorum: number;
  /** Witness key name → the member it belongs to. */
  readonly #witnessMembers: ReadonlyMap<string, string>;
  #targets: Target[] = [];
  #next = 0;
  #checkpoints = 0;
  #signed = 0;
  #cosigned = 0;
  #final = 0;
  #latestFinal: bigint | undefined;
  #size = 0n;
  #stored = Frontier.EMPTY;
  #tiled: Frontier | undefined = Frontier.EMPTY;
  #storedGood = 0n;
  #storedDiverged = false;
  #tiledDiverged = false;
  /** Leaf/tile disagreements since the last checkpoint, resolved when the next one is reached. */
  #pending: { index: bigint; tile: bigint }[] = [];
  /** The details commitment of each v2 leaf, by index; null when there is none to check. */
  readonly #commitments: (Uint8Array | null)[] = [];
  #detailsChecked = 0;
  readonly #problems: LogProblem[] = [];
  #problemCount = 0;

  constructor(trust: CheckpointTrust, quorum: number, witnessMembers: ReadonlyMap<string, string>) {
    this.#trust = trust;
    this.#quorum = quorum;
    this.#witnessMembers = witnessMembers;
  }

  /** The size up to which leaves are expected (the largest checkpoint listed). */
  get treeSize(): bigint {
    return this.#size;
  }

  /** Checks every checkpoint's signatures and stored columns; must be called once, before any leaf. */
  addCheckpoints(checkpoints: readonly ListedCheckpoint[]): void {
    if (this.#checkpoints !== 0 || this.#next !== 0) fail('INTERNAL', 'checkpoints are added once, before the leaves');
    const targets: Target[] = [];
    let previous = 0n;
    for (const listed of checkpoints) {
      this.#checkpoints++;
      if (listed.treeSize <= previous) fail('INTERNAL', 'checkpoints must be listed smallest first');
      previous = listed.treeSize;
      if (listed.treeSize > this.#size) this.#size = listed.treeSize;
      let opened;
      try {
        opened = openCheckpoint(new TextEncoder().encode(listed.note), this.#trust);
      } catch (error) {
        this.#problem(undefined, `checkpoint of tree size ${listed.treeSize}: ${describe(error)}; it is not signed by the log key in your region file, or a cosignature line was altered`, listed.treeSize);
        continue;
      }
      const signed = opened.checkpoint;
      if (signed.size !== listed.treeSize || !sameBytes(signed.rootHash, listed.rootHash)) {
        this.#problem(undefined, `checkpoint of tree size ${listed.treeSize}: the size or root hash stored beside it is not the one its signed note states (size ${signed.size}); the checkpoint row was altered`, listed.treeSize);
      }
      if (signed.size === 0n) continue;
      this.#signed++;
      const members = new Set(opened.cosignatures.map((c) => this.#witnessMembers.get(c.name) ?? c.name));
      if (members.size > 0) this.#cosigned++;
      if (members.size >= this.#quorum) {
        this.#final++;
        this.#latestFinal = signed.size;
      }
      targets.push({ size: signed.size, root: signed.rootHash });
    }
    this.#targets = targets.sort((a, b) => (a.size < b.size ? -1 : a.size > b.size ? 1 : 0));
  }

  /**
   * Adds leaf `index` (the next one) as the hub serves it, with the hash the level-0 tile holds
   * for it (undefined when the tile could not be read).
   */
  addLeaf(index: bigint, leaf: ServedLeaf, tileHash: Uint8Array | undefined): void {
    if (index !== BigInt(this.#next)) fail('INTERNAL', `leaf ${index} was added where leaf ${this.#next} was expected`);
    const position = index + 1n;
    let hash: Uint8Array | undefined;
    if (leaf.kind === 'missing') {
      this.#problem(index, `leaf index ${index} (audit position ${position}) is missing: ${leaf.reason}`);
      this.#commitments.push(null);
      // The tile still holds what was integrated, so later leaves can still be checked.
      hash = tileHash;
    } else {
      hash = leafHash(leaf.bytes);
      if (!sameBytes(hash, leaf.storedHash)) {
        this.#problem(index, `leaf index ${index} (audit position ${position}): the stored leaf_hash is not the hash of the stored leaf bytes; the row was altered`);
      }
      if (tileHash !== undefined && !sameBytes(hash, tileHash)) this.#pending.push({ index, tile: index / BigInt(TILE_WIDTH) });
      this.#commitments.push(commitmentOf(leaf.bytes));
    }
    this.#next++;
    if (hash === undefined) {
      // Neither the leaf nor its tile: nothing more can be rebuilt.
      this.#storedDiverged = true;
      this.#tiled = undefined;
      return;
    }
    if (this.#tiled === this.#stored && tileHash !== undefined && sameBytes(hash, tileHash)) {
      // While leaves and tiles agree the two trees are one: append once.
      this.#stored = this.#stored.append(hash).frontier;
      this.#tiled = this.#stored;
    } else {
      this.#stored = this.#stored.append(hash).frontier;
      if (this.#tiled !== undefined) this.#tiled = tileHash === undefined ? undefined : this.#tiled.append(tileHash).frontier;
    }
    while (this.#targets[0] !== undefined && this.#targets[0].size <= BigInt(this.#next)) {
      const target = this.#targets.shift() as Target;
      if (target.size === BigInt(this.#next)) this.#checkAt(target);
    }
  }

  /** A level-0 tile could not be read: its leaves are checked against the checkpoints alone. */
  tileUnavailable(tile: bigint, reason: string): void {
    this.#problem(tile * BigInt(TILE_WIDTH), `tile 0/${tile} (leaves from index ${tile * BigInt(TILE_WIDTH)}) could not be read: ${reason}`);
  }

  /** Checks the stored details of the event at `position` against its leaf's commitment. */
  checkDetails(position: bigint, details: Uint8Array, salt: Uint8Array): void {
    const index = position - 1n;
    if (index < 0n || index >= BigInt(this.#next)) return;
    const commitment = this.#commitments[Number(index)];
    if (commitment === undefined || commitment === null) return;
    this.#detailsChecked++;
    if (!sameBytes(detailsCommitment(salt, details), commitment)) {
      this.#problem(index, `leaf index ${index} (audit position ${position}): its details (reason, policy version, operation) do not match the commitment in the leaf; the audit_event_detail row was altered`);
    }
  }

  report(): LogVerifyReport {
    if (BigInt(this.#next) < this.#size) fail('INTERNAL', `only ${this.#next} of ${this.#size} leaves were added`);
    for (const pending of this.#pending) {
      this.#problem(pending.index, `leaf index ${pending.index} (audit position ${pending.index + 1n}) does not hash to what tile 0/${pending.tile} recorded when it was integrated, and no later checkpoint decides which is right`);
    }
    this.#pending = [];
    const problems = [...this.#problems].sort((a, b) => {
      if (a.index === undefined) return b.index === undefined ? 0 : 1;
      if (b.index === undefined) return -1;
      return a.index < b.index ? -1 : a.index > b.index ? 1 : 0;
    });
    return {
      ok: this.#problemCount === 0,
      leaves: BigInt(this.#next),
      checkpoints: this.#checkpoints,
      signedCheckpoints: this.#signed,
      cosigned: this.#cosigned,
      final: this.#final,
      quorum: this.#quorum,
      latestSize: this.#size,
      latestRoot: this.#size === 0n || this.#storedDiverged || this.#stored.size !== this.#size ? undefined : this.#stored.root(),
      latestFinalSize: this.#latestFinal,
      detailsChecked: this.#detailsChecked,
      problems: problems.slice(0, MAX_PROBLEMS),
      problemCount: this.#problemCount,
    };
  }

  #checkAt(target: Target): void {
    const storedMatches = !this.#storedDiverged && sameBytes(this.#stored.root(), target.root);
    const tiledMatches = this.#tiled !== undefined && !this.#tiledDiverged && (this.#tiled === this.#stored ? storedMatches : sameBytes(this.#tiled.root(), target.root));
    const tilesKnown = this.#tiled !== undefined && !this.#tiledDiverged;
    for (const { index, tile } of this.#pending) {
      const at = `leaf index ${index} (audit position ${index + 1n})`;
      if (tiledMatches) {
        this.#problem(index, `${at} was altered, inserted or renumbered: its hash is not the one the log integrated (tile 0/${tile}, which matches the signed checkpoint of size ${target.size})`);
      } else if (storedMatches) {
        this.#problem(index, `${at} matches the signed checkpoint of size ${target.size}, but tile 0/${tile} holds another hash for it: the tile was altered`);
      } else {
        this.#problem(index, `${at} and tile 0/${tile} disagree, and neither reproduces the signed checkpoint of size ${target.size}: both were altered`);
      }
    }
    if (!storedMatches && !this.#storedDiverged) {
      this.#storedDiverged = true;
      if (this.#pending.length === 0) {
        this.#problem(this.#storedGood, `the leaves no longer reproduce the signed checkpoint of size ${target.size}: a leaf in [${this.#storedGood}, ${target.size}) was changed, together with its tile`, target.size);
      }
    }
    if (tilesKnown && !tiledMatches) this.#tiledDiverged = true;
    if (storedMatches) this.#storedGood = target.size;
    this.#pending = [];
  }

  #problem(index: bigint | undefined, message: string, treeSize?: bigint): void {
    this.#problemCount++;
    // Problems may be found out of index order (a leaf's is decided at the next checkpoint): keep
    // plenty, so that the lowest indices survive the cut made after sorting.
    if (this.#problems.length < MAX_PROBLEMS * 100) this.#problems.push({ index, message, ...(treeSize === undefined ? {} : { treeSize }) });
  }
}

/** The details commitment of a version 2 leaf; null for a version 1 leaf or bytes that do not decode. */
function commitmentOf(bytes: Uint8Array): Uint8Array | null {
  try {
    const leaf = fromBinary(AuditLeafSchema, bytes);
    return leaf.v >= 2 ? leaf.detailsCommitment : null;
  } catch {
    return null;
  }
}

function describe(error: unknown): string {
  if (error instanceof CorridorError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

