/**
 * Migration 0009: the ledger's wake-up signal for hub replicas (see ledger-signal.ts). Every
 * ledger transaction that appends ends by updating `ledger_head`; this trigger then queues a
 * NOTIFY on `corridor_ledger` naming the new head and the writer's `application_name` (its
 * replica), which PostgreSQL delivers to listeners at commit and never for a rollback.
 * Notifications queued by one transaction are delivered together and in commit order.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const ledgerSignalMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE FUNCTION signal_ledger_head() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('corridor_ledger', 'head ' || NEW.next_sequence || ' ' || NEW.next_position || ' ' || current_setting('application_name'));
        RETURN NULL;
      END
      $$;
      CREATE TRIGGER ledger_head_signal AFTER UPDATE ON ledger_head
        FOR EACH ROW EXECUTE FUNCTION signal_ledger_head();
    `.execute(db);
  },
};
