/**
 * Fan-out of committed bulletins to live subscriptions, strictly in sequence order, whichever hub
 * process committed them. Publishers on this process commit one at a time (the ledger lock) but
 * their post-commit callbacks may resume in any order, so arrivals are reordered here; a gap that
 * does not fill itself within `gapFillMs` (a publisher whose post-commit step failed) is read from
 * the database. Bulletins committed by another hub process on the same database arrive as a
 * wake-up (`catchUp`, from the ledger's NOTIFY, see ledger-signal.ts) and are read by cursor from
 * the database: PostgreSQL is the only channel between replicas.
 * Listeners must not block: each subscription keeps its own bounded buffer.
 */
import type { Logger } from 'pino';
import type { AgencyId } from '../core/ids.js';
import type { BulletinStatus } from '../core/lifecycle.js';
import type { DeliveryGrant, StoredBulletin } from './store.js';

export interface LiveBulletin {
  readonly bulletin: StoredBulletin;
  /** Agencies the policy released it to, with what each receives and why. */
  readonly recipients: ReadonlyMap<AgencyId, DeliveryGrant>;
  /** Its lifecycle status when it is a follow-up (a new original is active). */
  readonly status?: BulletinStatus | undefined;
}

/**
 * A bulletin as emitted to listeners, with what its subscriptions on this process share: its
 * encoded stream frames by agency (an agency with several subscriptions, or replicas of one
 * client, gets the bytes encoded once) and its Key Binding JWTs (signed together, see
 * key-binding.ts `liveKeyBinding`).
 */
export interface EmittedBulletin extends LiveBulletin {
  readonly frames: Map<string, Promise<Uint8Array>>;
  readonly keyBindings: LiveKeyBindings;
}

/** A live bulletin's Key Binding JWTs: whether the pass that signs them has started, and those not yet taken. */
export interface LiveKeyBindings {
  started: boolean;
  readonly byAgency: Map<string, Promise<Uint8Array>>;
}

export type LiveListener = (bulletin: EmittedBulletin) => void;

export class Fanout {
  private emittedThrough: bigint;
  private readonly pending = new Map<bigint, LiveBulletin>();
  private readonly listeners = new Set<LiveListener>();
  private readonly markingListeners = new Set<() => void>();
  private gapTimer: NodeJS.Timeout | undefined;
  private filling = false;
  private fillAgain = false;
  /** The highest sequence known to be committed (by any process). */
  private committedThrough: bigint;

  /**
   * @param loadAfter reads committed bulletins after a sequence, in order, at most `limit`.
   * @param head the latest committed sequence when the hub starts: live delivery begins after it.
   */
  constructor(
    private readonly loadAfter: (afterSequence: bigint, limit: number) => Promise<LiveBulletin[]>,
    head: bigint,
    private readonly log: Logger,
    private readonly gapFillMs = 250,
    private readonly pageSize = 256,
  ) {
    this.emittedThrough = head;
    this.committedThrough = head;
  }

  /** The highest sequence emitted to listeners. */
  get head(): bigint {
    return this.emittedThrough;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Registers a listener for every bulletin emitted from now on; returns its removal. */
  listen(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Registers a listener told, after the commit, that bulletin markings were recorded; each
   * subscription then reads the markings after its last notice from the database, in audit order.
   */
  onMarkings(listener: () => void): () => void {
    this.markingListeners.add(listener);
    return () => this.markingListeners.delete(listener);
  }

  /** Tells every subscription that markings were committed. */
  markingsRecorded(): void {
    for (const listener of this.markingListeners) listener();
  }

  /** Offers a bulletin this process committed. Duplicates and already-emitted sequences are ignored. */
  offer(live: LiveBulletin): void {
    if (live.bulletin.sequence <= this.emittedThrough) return;
    if (live.bulletin.sequence > this.committedThrough) this.committedThrough = live.bulletin.sequence;
    this.pending.set(live.bulletin.sequence, live);
    this.emitInOrder();
  }

  /**
   * Says that every sequence up to `through` is committed (another process committed some of
   * them): what is neither emitted nor offered is read from the database now.
   */
  catchUp(through: bigint): void {
    if (through <= this.committedThrough && through <= this.emittedThrough) return;
    if (through > this.committedThrough) this.committedThrough = through;
    void this.fillGap();
  }

  close(): void {
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.listeners.clear();
    this.markingListeners.clear();
    this.pending.clear();
  }

  private emitInOrder(): void {
    for (;;) {
      const next = this.pending.get(this.emittedThrough + 1n);
      if (next === undefined) break;
      this.pending.delete(next.bulletin.sequence);
      this.emittedThrough = next.bulletin.sequence;
      const emitted: EmittedBulletin = { ...next, frames: new Map(), keyBindings: { started: false, byAgency: new Map() } };
      for (const listener of this.listeners) listener(emitted);
    }
    if ((this.pending.size > 0 || this.committedThrough > this.emittedThrough) && this.gapTimer === undefined) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        void this.fillGap();
      }, this.gapFillMs);
      this.gapTimer.unref();
    }
  }

  private async fillGap(): Promise<void> {
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = true;
    try {
      do {
        this.fillAgain = false;
        await this.fillThrough(this.fillTarget());
      } while (this.fillAgain);
    } catch (error) {
      this.log.error({ err: error }, 'fan-out gap fill failed');
    } finally {
      this.filling = false;
      this.emitInOrder();
    }
  }

  /** The highest sequence known to exist: committed elsewhere, or offered here. */
  private fillTarget(): bigint {
    let highest = this.committedThrough;
    for (const sequence of this.pending.keys()) if (sequence > highest) highest = sequence;
    return highest;
  }

  /** Reads every sequence after the emitted head up to `target` that is not pending, page by page, emitting as it goes. */
  private async fillThrough(target: bigint): Promise<void> {
    while (this.emittedThrough < target) {
      const after = this.emittedThrough;
      const page = await this.loadAfter(after, this.pageSize);
      for (const live of page) {
        if (live.bulletin.sequence > this.emittedThrough && !this.pending.has(live.bulletin.sequence)) this.pending.set(live.bulletin.sequence, live);
      }
      this.emitInOrder();
      if (page.length === 0 || this.emittedThrough === after) {
        // Not committed yet as far as this read can see (a commit still in flight): the next wake-up or the gap timer retries.
        this.log.debug({ after: after.toString(), target: target.toString() }, 'fan-out gap not yet visible; waiting');
        return;
      }
    }
  }
}
