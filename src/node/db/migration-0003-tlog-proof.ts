/**
 * Node migration 0003: the publish receipt's inclusion proof. Once the node's audit monitor has
 * verified that a bulletin's PUBLISH event is in the log, it stores a C2SP tlog-proof of it
 * beside the receipt, so the node can prove the publication offline even if the hub is gone.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const tlogProofMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      ALTER TABLE outbox ADD COLUMN tlog_proof text;
      ALTER TABLE outbox ADD CONSTRAINT outbox_tlog_proof_published CHECK (tlog_proof IS NULL OR state = 'published');
    `.execute(db);
  },
};
