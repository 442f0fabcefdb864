/**
 * Wake-ups between hub processes that share one database. Every ledger transaction that appends
 * updates `ledger_head` (with its last write, or at its end), and a trigger on that row (migrations 0009 and 0013) sends
 * `NOTIFY corridor_ledger, 'head <next_sequence> <next_position> <application_name>'`, which
 * PostgreSQL delivers only when (and if) the transaction commits. A transaction that records
 * notices for subscriptions (key-compromise markings, cooperation-request notices) also sends
 * `'notices <application_name>'`. Each hub process names its pool's connections with its own
 * replica name, so it can tell its own commits (already in its fan-out) from another's.
 *
 * A signal carries no data: the receiver reads what changed from the tables by cursor, so a
 * lost or coalesced signal delays but never loses anything. The listening connection reconnects
 * with back-off, and after every (re)connect the hub reads what it may have missed.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { Logger } from '../infra/log.js';
import type { HubDatabase } from './db/schema.js';

export const LEDGER_CHANNEL = 'corridor_ledger';

export type LedgerSignal =
  | { readonly kind: 'head'; readonly nextSequence: bigint; readonly nextPosition: bigint; readonly replica: string }
  | { readonly kind: 'notices'; readonly replica: string };

/** A fresh replica name, also the `application_name` of the process's database connections. */
export function newReplicaName(): string {
  return `corridor-hub-${randomBytes(6).toString('hex')}`;
}

/** Reads a NOTIFY payload; undefined for anything this version does not know. */
export function parseLedgerSignal(payload: string): LedgerSignal | undefined {
  const [kind, ...rest] = payload.split(' ');
  if (kind === 'head') {
    const [nextSequence, nextPosition, ...name] = rest;
    if (nextSequence === undefined || nextPosition === undefined || !/^\d+$/.test(nextSequence) || !/^\d+$/.test(nextPosition)) return undefined;
    return { kind, nextSequence: BigInt(nextSequence), nextPosition: BigInt(nextPosition), replica: name.join(' ') };
  }
  if (kind === 'notices') return { kind, replica: rest.join(' ') };
  return undefined;
}

/** Tells every hub process, at commit, that this transaction recorded notices for subscriptions. */
export async function signalNotices(db: Kysely<HubDatabase>): Promise<void> {
  await sql`SELECT pg_notify(${LEDGER_CHANNEL}, 'notices ' || current_setting('application_name'))`.execute(db);
}

export interface LedgerListenerOptions {
  readonly url: string;
  readonly log: Logger;
  readonly onSignal: (signal: LedgerSignal) => void;
  /** After every connect (the first included): read whatever may have been missed while not listening. */
  readonly onListening: () => void;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** One connection that LISTENs on the ledger channel, for as long as the hub runs. */
export class LedgerListener {
  #client: pg.Client | undefined;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs: number;

  constructor(private readonly options: LedgerListenerOptions) {
    this.#backoffMs = options.minBackoffMs ?? 100;
  }

  /** Connects and listens; throws when the first connection fails (the hub does not start without it). */
  async start(): Promise<void> {
    await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url, application_name: 'corridor-hub-listener' });
    client.on('notification', (message) => {
      if (message.channel !== LEDGER_CHANNEL || message.payload === undefined) return;
      const signal = parseLedgerSignal(message.payload);
      if (signal === undefined) this.options.log.warn({ payload: message.payload.slice(0, 100) }, 'unknown ledger signal ignored');
      else this.options.onSignal(signal);
    });
    const lost = (error?: Error): void => {
      if (this.#client !== client) return;
      this.#client = undefined;
      client.end().catch(() => {});
      if (this.#closed) return;
      this.options.log.warn({ err: error, retryInMs: this.#backoffMs }, 'ledger listener connection lost; reconnecting');
      this.#scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${LEDGER_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#backoffMs = this.options.minBackoffMs ?? 100;
    this.options.onListening();
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#connect().catch((error: unknown) => {
        this.options.log.warn({ err: error }, 'ledger listener could not reconnect');
        this.#backoffMs = Math.min(this.#backoffMs * 2, this.options.maxBackoffMs ?? 5000);
        if (!this.#closed) this.#scheduleReconnect();
      });
    }, this.#backoffMs);
    this.#retry.unref();
  }
}
