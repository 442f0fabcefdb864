/**
 * Migration 0013: a version of the key directory and the agreements, on the ledger head. A
 * publish batch reads, under the ledger lock, the signing keys of its bulletins and every
 * agreement version; both change rarely (an operator's or a member's act), so the hub keeps
 * them between batches (`directory-cache.ts`) while this version stands still.
 *
 * Triggers bump it in the same statement as any change to `member_key` or
 * `agreement_version`, whoever makes it (the hub's own stores, another replica, a hand-run
 * statement; not one run with the triggers disabled or `session_replication_role = replica`,
 * after which the hubs must be restarted), and the bump updates the `ledger_head` row, so it waits for and then holds the
 * ledger lock. A batch locks that row with SELECT … FOR UPDATE, which returns its newest
 * committed version: the version it reads is that of every key and agreement committed before
 * its lock, and no change can commit while it holds the lock.
 *
 * The replicas' wake-up signal (migration 0009) now fires only for an update that sets the
 * positions or sequences (the ledger's head write), not for a bump: a bump carries nothing to
 * deliver.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const directoryVersionMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      ALTER TABLE ledger_head ADD COLUMN directory_version bigint NOT NULL DEFAULT 0;
      CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE ledger_head SET directory_version = directory_version + 1 WHERE singleton;
        RETURN NULL;
      END
      $$;
      CREATE TRIGGER member_key_directory_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON member_key
        FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();
      CREATE TRIGGER agreement_version_directory_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agreement_version
        FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();
      DROP TRIGGER ledger_head_signal ON ledger_head;
      CREATE TRIGGER ledger_head_signal AFTER UPDATE OF next_position, next_sequence ON ledger_head
        FOR EACH ROW EXECUTE FUNCTION signal_ledger_head();
    `.execute(db);
  },
};
