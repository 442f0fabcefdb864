/**
 * Migration 0012: the hub's Key Binding JWT of a delivery is made when the delivery is sent, no
 * longer stored with the decision at publication (src/hub/key-binding.ts). Every claim it signs
 * is in the rows already: the agency, the bulletin's sequence and hub time, and `sd_hash`, which
 * a delivery must therefore have (32 bytes). Rows written before keep their stored KB-JWT, which is sent as
 * it is. The check is NOT VALID: it holds for every row written from now on without reading the
 * table (rows written before had sd_hash on every delivery anyway).
 *
 * A hub of an earlier version reads an empty KB-JWT from a row written after this migration, and
 * receiving nodes would refuse what it sends; kysely's migrator refuses to start such a hub on
 * this schema (a migration it does not know), so replicas are upgraded together (README, "Running
 * several hub replicas").
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const keyBindingAtSendMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      ALTER TABLE delivery_decision
        ADD CONSTRAINT delivery_decision_release_named
        CHECK (decision <> 'deliver' OR (sd_hash IS NOT NULL AND octet_length(sd_hash) = 32 AND disclosed IS NOT NULL)) NOT VALID;
      COMMENT ON COLUMN delivery_decision.kb_jwt IS
        'Stored by hubs before migration 0012 only; later Key Binding JWTs are signed when the delivery is sent';
    `.execute(db);
  },
};
