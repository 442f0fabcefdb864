/**
 * Group commit: callers submit one item each and wait for its own outcome, while a single loop
 * commits whatever has queued meanwhile as one batch. The first item of a quiet period is
 * committed at once, alone; under load, items arriving while a batch commits form the next
 * one. So a lone publisher waits for no one, and concurrent publishers share one transaction,
 * one ledger lock and one fsync instead of queueing for them one by one. A batch's commit
 * function returns an outcome per item, an Error for an item refused on its own; a commit that
 * throws fails every item of its batch (nothing of it was committed).
 */
import { CorridorError } from '../core/errors.js';

export interface GroupCommitOptions<I> {
  /** Most items in one batch. */
  readonly maxBatch: number;
  /** An item that must be committed in a batch of its own (it reads what earlier items write). */
  readonly alone?: (item: I) => boolean;
  /** Told the size of every batch, for metrics. */
  readonly onBatch?: (size: number) => void;
}

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (outcome: O) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  readonly #queue: Waiting<I, O>[] = [];
  #draining = false;
  /** The drain loop under way, or the last one: what close() waits for. */
  #drained: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    private readonly commit: (items: readonly I[]) => Promise<readonly (O | Error)[]>,
    private readonly options: GroupCommitOptions<I>,
  ) {}

  /** Resolves with the item's outcome once its batch has committed; rejects with its refusal or the batch's failure. */
  submit(item: I): Promise<O> {
    if (this.#closed) return Promise.reject(new CorridorError('SHUTTING_DOWN', 'the hub is shutting down; try again on another replica or once it is back'));
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        this.#drained = this.#drain();
      }
    });
  }

  /**
   * Refuses new items (SHUTTING_DOWN) and resolves once everything already submitted has been
   * committed or refused: the hub closes its database only after this, so that no batch under
   * way meets a closed pool.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#drained;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#take();
        let outcomes: readonly (O | Error)[];
        try {
          this.options.onBatch?.(batch.length);
          outcomes = await this.commit(batch.map((waiting) => waiting.item));
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        batch.forEach((waiting, index) => {
          const outcome = outcomes[index];
          if (outcome === undefined) waiting.reject(new Error('group commit returned no outcome for an item'));
          else if (outcome instanceof Error) waiting.reject(outcome);
          else waiting.resolve(outcome);
        });
      }
    } finally {
      this.#draining = false;
    }
  }

  /** The next batch: one item that must go alone, or consecutive others up to the limit. */
  #take(): Waiting<I, O>[] {
    const predicate = this.options.alone ?? (() => false);
    // An item the predicate cannot judge goes alone, to the commit that judges it: a throw here
    // would leave the queue stuck and its callers waiting.
    const alone = (item: I): boolean => {
      try {
        return predicate(item);
      } catch {
        return true;
      }
    };
    const first = this.#queue[0];
    if (first !== undefined && alone(first.item)) return this.#queue.splice(0, 1);
    let count = 0;
    while (count < this.#queue.length && count < this.options.maxBatch && !alone((this.#queue[count] as Waiting<I, O>).item)) count++;
    return this.#queue.splice(0, count);
  }
}
