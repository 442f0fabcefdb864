/**
 * Numbered migrations of a member node's database, applied in order by kysely's Migrator. The
 * same SQL runs on the embedded cluster and on an external PostgreSQL. Never edit a migration
 * that has shipped: add the next number.
 */
import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { CorridorError } from '../../core/errors.js';
import { keyRolloverMigration } from './migration-0002-key-rollover.js';
import { tlogProofMigration } from './migration-0003-tlog-proof.js';
import { requestNoticesMigration } from './migration-0004-request-notices.js';
import type { NodeDatabase } from './schema.js';

const migrations: Record<string, Migration> = {
  '0001_node_core': {
    async up(db: Kysely<unknown>): Promise<void> {
      await sql`
        CREATE TABLE outbox (
          bulletin_id text PRIMARY KEY,
          seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
          member_id text NOT NULL CHECK (member_id ~ '^[A-Z]{3}$'),
          jti text NOT NULL,
          jws bytea NOT NULL,
          -- Earlier signatures of the same bulletin (re-signed for a fresh iat): one of them may
          -- be what the hub committed, if its answer was lost.
          superseded bytea[] NOT NULL DEFAULT '{}',
          draft_sha256 bytea NOT NULL CHECK (octet_length(draft_sha256) = 32),
          expires_at timestamptz NOT NULL,
          state text NOT NULL CHECK (state IN ('pending', 'published', 'refused')),
          receipt bytea,
          sequence bigint,
          audit_position bigint,
          refusal text,
          attempts integer NOT NULL DEFAULT 0,
          next_attempt_at timestamptz NOT NULL,
          created_at timestamptz NOT NULL,
          updated_at timestamptz NOT NULL,
          UNIQUE (member_id, jti),
          CHECK (bulletin_id = member_id || ':' || jti),
          -- A published row always has its receipt; a refused one always says why.
          CHECK (state <> 'published' OR (receipt IS NOT NULL AND sequence IS NOT NULL AND audit_position IS NOT NULL)),
          CHECK (state <> 'refused' OR refusal IS NOT NULL)
        );
        CREATE INDEX outbox_pending ON outbox (member_id, seq) WHERE state = 'pending';

        CREATE TABLE pinned_key (
          kid text PRIMARY KEY,
          member_id text NOT NULL CHECK (member_id ~ '^[A-Z]{3}$'),
          alg text NOT NULL CHECK (alg IN ('Ed25519', 'EdDSA')),
          jwk jsonb NOT NULL,
          first_seen timestamptz NOT NULL
        );
        CREATE INDEX pinned_key_member ON pinned_key (member_id);

        CREATE TABLE hub_key (
          kid text PRIMARY KEY,
          alg text NOT NULL CHECK (alg IN ('Ed25519', 'EdDSA')),
          jwk jsonb NOT NULL,
          first_seen timestamptz NOT NULL
        );

        -- A pin is never moved to another member or another key: the trust store relies on it.
        CREATE FUNCTION refuse_pin_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION '% is insert-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        CREATE TRIGGER pinned_key_insert_only BEFORE UPDATE ON pinned_key
          FOR EACH ROW EXECUTE FUNCTION refuse_pin_rewrite();
        CREATE TRIGGER hub_key_insert_only BEFORE UPDATE ON hub_key
          FOR EACH ROW EXECUTE FUNCTION refuse_pin_rewrite();

        CREATE TABLE inbox (
          agency_id text NOT NULL,
          bulletin_id text NOT NULL,
          cursor bigint NOT NULL,
          jws bytea NOT NULL,
          receipt bytea NOT NULL,
          reason text NOT NULL,
          policy_version text NOT NULL,
          received_at timestamptz NOT NULL,
          acked_at timestamptz,
          PRIMARY KEY (agency_id, bulletin_id)
        );
        CREATE INDEX inbox_unacked ON inbox (agency_id, cursor) WHERE acked_at IS NULL;

        CREATE TABLE subscription_cursor (
          agency_id text PRIMARY KEY,
          cursor bigint NOT NULL CHECK (cursor >= 0),
          updated_at timestamptz NOT NULL
        );

        CREATE TABLE rejected_delivery (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          agency_id text NOT NULL,
          cursor bigint NOT NULL,
          bulletin_id text NOT NULL,
          code text NOT NULL,
          reason text NOT NULL,
          jws bytea NOT NULL,
          received_at timestamptz NOT NULL,
          UNIQUE (agency_id, cursor)
        );
      `.execute(db);
    },
  },
  '0002_key_rollover': keyRolloverMigration,
  '0003_outbox_tlog_proof': tlogProofMigration,
  '0004_request_notices': requestNoticesMigration,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings a node database up to date; safe to run from several processes at once (kysely locks). */
export async function migrateNodeDatabase(db: Kysely<NodeDatabase>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed !== undefined) {
    throw new CorridorError('INTERNAL', `node database migration ${failed?.migrationName ?? ''} failed`, { cause: error });
  }
}
