/**
 * Migration 0008: the retention of cooperation-request documents. A request document's retention
 * ends at the earlier of its signed `exp` and the region default (from its hub time), as a
 * bulletin's does; the purge job then sets its Disclosures to NULL (`request_disclosure.encoded`,
 * the only purgeable column) and records it here, one row per document, with the RETENTION_PURGE
 * event that audited it. Insert-only: a document is purged once (the primary key), and a purge is
 * never undone.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const requestRetentionMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE request_document_purge (
        audit_position bigint PRIMARY KEY REFERENCES request_document (audit_position),
        request_id text NOT NULL REFERENCES cooperation_request (id),
        ends_at timestamptz NOT NULL,
        -- What ended it: 'exp' or 'region-default'.
        basis text NOT NULL,
        purged_at timestamptz NOT NULL,
        -- The RETENTION_PURGE event (one per request and run, so not unique).
        purge_position bigint NOT NULL REFERENCES audit_event (position)
      );
      CREATE INDEX request_document_purge_request ON request_document_purge (request_id);
      CREATE TRIGGER request_document_purge_append_only BEFORE UPDATE OR DELETE ON request_document_purge
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER request_document_purge_no_truncate BEFORE TRUNCATE ON request_document_purge
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      -- The purge job looks for documents by their exp and, for the region default, their hub time.
      CREATE INDEX request_document_expires ON request_document (expires_at);
      CREATE INDEX request_document_hub_time ON request_document (hub_time);
    `.execute(db);
  },
};
