/**
 * The calls a hub is serving. grpc-js does not stop a handler when the server's forced shutdown
 * cuts its call off: the handler runs on, reading, writing the ledger or recording a refusal. The
 * hub waits for these before it closes its database, so that none of them meets a closed pool
 * (a lost refusal record, an "unexpected error" in the log).
 */
export class CallsInFlight {
  readonly #calls = new Set<Promise<void>>();

  /** Counts `call` as under way until it settles; returns it unchanged. */
  track<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.#calls.add(settled);
    void settled.then(() => this.#calls.delete(settled));
    return call;
  }

  get size(): number {
    return this.#calls.size;
  }

  /** Resolves once every call tracked so far, and any tracked meanwhile, has settled. */
  async settled(): Promise<void> {
    while (this.#calls.size > 0) await Promise.all([...this.#calls]);
  }
}
