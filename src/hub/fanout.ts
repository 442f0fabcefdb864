/**
 * In-process fan-out of committed bulletins to live subscriptions, strictly in sequence order.
 * Publishers commit one at a time (the ledger lock) but their post-commit callbacks may resume
 * in any order, so arrivals are reordered here; a gap that does not fill itself within
 * `gapFillMs` (a publisher whose post-commit step failed) is read from the database. Bulletins
 * committed by another hub process on the same database are seen only once this process
 * commits one after them: running replicas needs a database wake-up signal, not built yet.
 * Listeners must not block: each subscription keeps its own bounded buffer.
 */
import type { Logger } from 'pino';
import type { BulletinStatus } from '../core/lifecycle.js';
import type { DeliveryGrant, StoredBulletin } from './store.js';

export interface LiveBulletin {
  readonly bulletin: StoredBulletin;
  /** Agencies the policy released it to, with what each receives and why. */
  readonly recipients: ReadonlyMap<string, DeliveryGrant>;
  /** Its lifecycle status when it is a follow-up (a new original is active). */
  readonly status?: BulletinStatus | undefined;
}

export type LiveListener = (bulletin: LiveBulletin) => void;

export class Fanout {
  private emittedThrough: bigint;
  private readonly pending = new Map<bigint, LiveBulletin>();
  private readonly listeners = new Set<LiveListener>();
  private readonly markingListeners = new Set<() => void>();
  private gapTimer: NodeJS.Timeout | undefined;
  private filling = false;

  constructor(
    private readonly load: (sequence: bigint) => Promise<LiveBulletin | undefined>,
    head: bigint,
    private readonly log: Logger,
    private readonly gapFillMs = 250,
  ) {
    this.emittedThrough = head;
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

  /** Offers a committed bulletin. Duplicates and already-emitted sequences are ignored. */
  offer(live: LiveBulletin): void {
    if (live.bulletin.sequence <= this.emittedThrough) return;
    this.pending.set(live.bulletin.sequence, live);
    this.emitInOrder();
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
      for (const listener of this.listeners) listener(next);
    }
    if (this.pending.size > 0 && this.gapTimer === undefined) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        void this.fillGap();
      }, this.gapFillMs);
      this.gapTimer.unref();
    }
  }

  private async fillGap(): Promise<void> {
    if (this.filling) return;
    this.filling = true;
    try {
      const waiting = [...this.pending.keys()];
      if (waiting.length === 0) return;
      const highest = waiting.reduce((a, b) => (a > b ? a : b));
      for (let sequence = this.emittedThrough + 1n; sequence < highest; sequence++) {
        if (this.pending.has(sequence)) continue;
        const live = await this.load(sequence);
        if (live === undefined) {
          this.log.warn({ sequence: sequence.toString() }, 'fan-out gap not yet committed; waiting');
          break;
        }
        this.pending.set(sequence, live);
      }
    } catch (error) {
      this.log.error({ err: error }, 'fan-out gap fill failed');
    } finally {
      this.filling = false;
      this.emitInOrder();
    }
  }
}
