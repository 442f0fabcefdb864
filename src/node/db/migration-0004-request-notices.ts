/**
 * Node migration 0004: request notices. An agency stores every notice of a cooperation request
 * its state made or is asked (the transition, the request's state, and the document as it was
 * presented: the request, the answer, the delay notice or the withdrawal), verified or, when the
 * document failed verification, with why, before it moves its notice position past it.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const requestNoticesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE request_notice (
        agency_id text NOT NULL,
        audit_position bigint NOT NULL CHECK (audit_position > 0),
        request_id text NOT NULL,
        state text NOT NULL,
        side text NOT NULL CHECK (side IN ('requester', 'addressee')),
        hub_time timestamptz NOT NULL,
        due_at timestamptz NOT NULL,
        -- The document exactly as presented (SD-JWT with the hub's Key Binding JWT); NULL when none.
        sd_jwt bytea,
        reason text NOT NULL,
        -- NULL when the document verified (or there was none); else the first check it failed.
        rejection text,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (agency_id, audit_position)
      );
      CREATE INDEX request_notice_request ON request_notice (agency_id, request_id, audit_position);
    `.execute(db);
  },
};
