/**
 * The audit monitor's local state, in the member's audit directory (`members/<ID>/audit/`):
 *
 * ```
 * state.json            the last verified checkpoint (exact signed note), the compact range of its
 *                       tree, the last checkpoint this node cosigned, and what the node has seen
 *                       of its own events (written atomically: temporary file, then rename)
 * verified.checkpoint   the last verified checkpoint, verbatim (a copy, for people and tools)
 * cosigned.checkpoint   the last checkpoint body this node cosigned, with its cosignature line
 * evidence/<time>-<code>/  what an alarm kept: both conflicting signed checkpoints verbatim, the
 *                       proof received, the entries or receipts concerned, and summary.json
 * monitor.lock          held while a round runs, so two monitors never interleave
 * ```
 *
 * The state is trusted local data, but it is re-checked on load (the note against the pinned log
 * key, the compact range against the note's root) so that a corrupted or hand-edited file stops
 * the monitor instead of making it accept a fork.
 */
import { sameBytes } from '../core/bytes.js';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { parseCheckpoint } from '../core/checkpoint.js';
import { CorridorError, fail } from '../core/errors.js';
import { isMemberId } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import type { SigningAlgorithm } from '../core/jws.js';
import type { LogTrust, TreeHead } from '../core/log-monitor.js';
import { openWitnessed } from '../core/log-monitor.js';
import { EMPTY_ROOT, Frontier } from '../core/merkle.js';
import { parseBase64, toBase64 } from '../core/note.js';
import { publicJwkSchema } from '../core/region.js';
import type { PublicJwk } from '../core/region.js';

const STATE_FORMAT = 'corridor-audit-monitor/1';
const STATE_FILE = 'state.json';

/** The last checkpoint verified, with the compact range that continues its tree. */
export interface VerifiedCheckpoint {
  /** The signed note exactly as the hub served it (with the cosignatures it carried). */
  readonly note: string;
  readonly head: TreeHead;
  readonly frontier: Frontier;
}

/** The last checkpoint this node's witness cosigned. */
export interface CosignedCheckpoint {
  readonly body: string;
  readonly head: TreeHead;
  /** The cosignature line this node produced for it. */
  readonly signatureLine: string;
}

/** A DELIVER event to one of the member's agencies, as seen in the log. */
export interface SeenDelivery {
  readonly index: bigint;
  /** The sd_hash of what was delivered. */
  readonly digest: Uint8Array;
}

/** A signing key the member holds (a private key file) or proposed (a rotation statement signed by such a key). */
export interface OwnKey {
  readonly kid: string;
  readonly jwk: PublicJwk;
  readonly alg: SigningAlgorithm;
  readonly source: 'held' | 'proposed';
}

export interface MonitorState {
  readonly verified: VerifiedCheckpoint | undefined;
  readonly cosigned: CosignedCheckpoint | undefined;
  /** DELIVER events to the member's agencies, by `<agency> <bulletin id>`. */
  readonly deliveries: ReadonlyMap<string, SeenDelivery>;
  /** Keys of the member the monitor has accepted as its own, by kid. */
  readonly ownKeys: ReadonlyMap<string, OwnKey>;
  /** Bulletins whose PUBLISH event has been proved included (their inclusion proof verified). */
  readonly proven: ReadonlySet<string>;
}

/** The state of a monitor that has verified nothing yet: the empty tree. */
export const INITIAL_STATE: MonitorState = { verified: undefined, cosigned: undefined, deliveries: new Map(), ownKeys: new Map(), proven: new Set() };

/** The tree head a state stands on: the last verified checkpoint, or the empty tree. */
export function verifiedHead(state: MonitorState): TreeHead {
  return state.verified?.head ?? { size: 0n, rootHash: EMPTY_ROOT };
}

const base64 = z.string().refine((value) => parseBase64(value) !== undefined, 'standard base64');
const decimal = z.string().regex(/^(0|[1-9][0-9]{0,19})$/);
const stateSchema = z.strictObject({
  format: z.literal(STATE_FORMAT),
  member: z.string().refine(isMemberId),
  origin: z.string(),
  verified: z.strictObject({ note: z.string(), frontier: z.array(base64).max(64) }).nullable(),
  cosigned: z.strictObject({ body: z.string(), signatureLine: z.string() }).nullable(),
  deliveries: z.array(z.strictObject({ key: z.string(), index: decimal, digest: base64 })),
  ownKeys: z.array(z.strictObject({ kid: z.string(), jwk: publicJwkSchema, alg: z.enum(['Ed25519', 'EdDSA']), source: z.enum(['held', 'proposed']) })),
  proven: z.array(z.string()),
});

/**
 * Loads the state of `member`'s monitor from `dir`; {@link INITIAL_STATE} when there is none.
 * @throws CorridorError `CONFIG_INVALID` when the file is corrupt, was written for another member
 * or log, or its checkpoint does not verify with the pinned log key.
 */
export async function loadMonitorState(dir: string, member: MemberId, trust: LogTrust): Promise<MonitorState> {
  const file = path.join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return INITIAL_STATE;
    throw error;
  }
  const corrupt = (why: string, cause?: unknown): never =>
    fail('CONFIG_INVALID', `the audit monitor state ${file} ${why}; move it aside to start over from the empty tree (the monitor then re-reads the whole log)`, cause);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    corrupt('is not valid JSON', cause);
  }
  const parsed = stateSchema.safeParse(value);
  if (!parsed.success) return corrupt('is not a monitor state');
  const saved = parsed.data;
  if (saved.member !== member) corrupt(`belongs to member ${saved.member}`);
  if (saved.origin !== trust.trust.origin) corrupt(`is for log ${saved.origin}, not ${trust.trust.origin}`);

  let verified: VerifiedCheckpoint | undefined;
  if (saved.verified !== null) {
    let head: TreeHead;
    try {
      head = toHead(openWitnessed(new TextEncoder().encode(saved.verified.note), trust).opened.checkpoint);
    } catch (cause) {
      return corrupt('holds a checkpoint that does not verify with the log key of the region file', cause);
    }
    const frontier = restoreFrontier(head, saved.verified.frontier.map(decode), corrupt);
    verified = { note: saved.verified.note, head, frontier };
  }
  let cosigned: CosignedCheckpoint | undefined;
  if (saved.cosigned !== null) {
    try {
      cosigned = { body: saved.cosigned.body, head: toHead(parseCheckpoint(saved.cosigned.body)), signatureLine: saved.cosigned.signatureLine };
    } catch (cause) {
      return corrupt('holds a cosigned checkpoint that cannot be parsed', cause);
    }
  }
  return {
    verified,
    cosigned,
    deliveries: new Map(saved.deliveries.map((d) => [d.key, { index: BigInt(d.index), digest: decode(d.digest) }])),
    ownKeys: new Map(saved.ownKeys.map((k) => [k.kid, k])),
    proven: new Set(saved.proven),
  };
}

function restoreFrontier(head: TreeHead, hashes: Uint8Array[], corrupt: (why: string, cause?: unknown) => never): Frontier {
  let frontier: Frontier;
  try {
    frontier = Frontier.restore(head.size, hashes);
  } catch (cause) {
    return corrupt('holds a compact range that does not fit its tree size', cause);
  }
  if (!sameBytes(frontier.root(), head.rootHash)) corrupt('holds a compact range whose root is not the root of its checkpoint');
  return frontier;
}

/** Writes the state atomically, then the human-readable copies of the checkpoints. */
export async function saveMonitorState(dir: string, member: MemberId, trust: LogTrust, state: MonitorState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const saved: z.input<typeof stateSchema> = {
    format: STATE_FORMAT,
    member,
    origin: trust.trust.origin,
    verified: state.verified === undefined ? null : { note: state.verified.note, frontier: state.verified.frontier.hashes.map(toBase64) },
    cosigned: state.cosigned === undefined ? null : { body: state.cosigned.body, signatureLine: state.cosigned.signatureLine },
    deliveries: [...state.deliveries].map(([key, d]) => ({ key, index: d.index.toString(), digest: toBase64(d.digest) })),
    ownKeys: [...state.ownKeys.values()].map((k) => ({ kid: k.kid, jwk: k.jwk, alg: k.alg, source: k.source })),
    proven: [...state.proven],
  };
  await writeAtomically(path.join(dir, STATE_FILE), `${JSON.stringify(saved, null, 1)}\n`);
  if (state.verified !== undefined) await writeAtomically(path.join(dir, 'verified.checkpoint'), state.verified.note);
  if (state.cosigned !== undefined) await writeAtomically(path.join(dir, 'cosigned.checkpoint'), `${state.cosigned.body}\n${state.cosigned.signatureLine}`);
}

/** What an alarm keeps. File names are fixed by the caller; contents are written verbatim. */
export interface Evidence {
  readonly code: string;
  readonly summary: Record<string, unknown>;
  readonly files: ReadonlyMap<string, string | Uint8Array>;
}

/** Writes an evidence directory `evidence/<time>-<code>` under `dir` and returns its path. Never overwrites one. */
export async function writeEvidence(dir: string, at: Date, evidence: Evidence): Promise<string> {
  const parent = path.join(dir, 'evidence');
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const base = path.join(parent, `${at.toISOString().replace(/[:.]/g, '-')}-${evidence.code}`);
  let target = base;
  for (let n = 2; ; n++) {
    try {
      await mkdir(target, { mode: 0o700 });
      break;
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
      target = `${base}-${n}`;
    }
  }
  for (const [name, content] of evidence.files) await writeFile(path.join(target, name), content, { mode: 0o600 });
  await writeFile(path.join(target, 'summary.json'), `${JSON.stringify(evidence.summary, null, 2)}\n`, { mode: 0o600 });
  return target;
}

/**
 * Takes the monitor lock of `dir` (a file holding the owner's pid) and returns its release. A lock
 * left by a process that no longer runs is taken over.
 * @throws CorridorError `CONFIG_INVALID` while another live monitor holds it.
 */
export async function lockMonitor(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'monitor.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      heldHere.add(file);
      return async () => {
        heldHere.delete(file);
        await rm(file, { force: true });
      };
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
      const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      // Our own pid in a lock this process does not hold is a leftover of an earlier process that had it.
      const live = pid === process.pid ? heldHere.has(file) : Number.isSafeInteger(pid) && pid > 0 && isAlive(pid);
      if (live) throw new CorridorError('CONFIG_INVALID', `another audit monitor (pid ${pid}) is running on ${dir}; stop it first`);
      await rm(file, { force: true });
    }
  }
  fail('CONFIG_INVALID', `the audit monitor lock ${file} could not be taken`);
}

/** Lock files this process holds. */
const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

async function writeAtomically(file: string, content: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  await rename(temporary, file);
}

function toHead(checkpoint: { size: bigint; rootHash: Uint8Array }): TreeHead {
  return { size: checkpoint.size, rootHash: checkpoint.rootHash };
}

function decode(value: string): Uint8Array {
  return parseBase64(value) ?? new Uint8Array(0);
}
