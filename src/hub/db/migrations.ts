/**
 * Numbered migrations of the hub database, applied in order by kysely's Migrator. The same SQL
 * runs on the embedded cluster and on an external PostgreSQL. Never edit a migration that has
 * shipped: add the next number.
 */
import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { CorridorError } from '../../core/errors.js';
import { keyLifecycleMigration } from './migration-0005-key-lifecycle.js';
import { cooperationRequestsMigration } from './migration-0006-cooperation-requests.js';
import { lifecycleRetentionMigration } from './migration-0007-lifecycle-retention.js';
import { requestRetentionMigration } from './migration-0008-request-retention.js';
import { ledgerSignalMigration } from './migration-0009-ledger-signal.js';
import { indexDietMigration } from './migration-0010-index-diet.js';
import { ledgerReferencesMigration } from './migration-0011-ledger-references.js';
import { keyBindingAtSendMigration } from './migration-0012-key-binding-at-send.js';
import { directoryVersionMigration } from './migration-0013-directory-version.js';
import type { HubDatabase } from './schema.js';

/** Every migration by name, in order; exported for the upgrade tests. */
export const migrations: Record<string, Migration> = {
  '0001_exchange_core': {
    async up(db: Kysely<unknown>): Promise<void> {
      await sql`
        CREATE TABLE member (
          id text PRIMARY KEY CHECK (id ~ '^[A-Z]{3}$'),
          name text NOT NULL,
          active boolean NOT NULL DEFAULT true,
          record_sha256 bytea NOT NULL,
          updated_at timestamptz NOT NULL
        );
        CREATE TABLE member_key (
          kid text PRIMARY KEY,
          member_id text NOT NULL REFERENCES member (id),
          alg text NOT NULL CHECK (alg IN ('Ed25519', 'EdDSA')),
          jwk jsonb NOT NULL,
          status text NOT NULL CHECK (status IN ('active', 'retired')),
          added_at timestamptz NOT NULL
        );
        CREATE INDEX member_key_member ON member_key (member_id);
        CREATE TABLE agency (
          id text PRIMARY KEY,
          name text NOT NULL,
          member_id text REFERENCES member (id),
          organisation text,
          roles text[] NOT NULL,
          active boolean NOT NULL DEFAULT true,
          record_sha256 bytea NOT NULL,
          updated_at timestamptz NOT NULL,
          CHECK ((member_id IS NULL) <> (organisation IS NULL))
        );
        CREATE TABLE operator (
          id text PRIMARY KEY,
          name text NOT NULL,
          active boolean NOT NULL DEFAULT true,
          record_sha256 bytea NOT NULL,
          updated_at timestamptz NOT NULL
        );

        -- One row. Every transaction that appends audit events locks it first, so audit
        -- positions and bulletin sequences are contiguous and assigned in commit order:
        -- a reader that sees position n has seen every position below n.
        CREATE TABLE ledger_head (
          singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
          next_position bigint NOT NULL,
          next_sequence bigint NOT NULL
        );
        INSERT INTO ledger_head (singleton, next_position, next_sequence) VALUES (true, 1, 1);

        CREATE TABLE audit_event (
          position bigint PRIMARY KEY,
          kind smallint NOT NULL,
          hub_time timestamptz NOT NULL,
          actor text NOT NULL,
          bulletin_id text,
          agency_id text,
          code text NOT NULL,
          leaf bytea NOT NULL,
          -- Not unique: two events may have the same leaf (RFC 9162 allows duplicate leaves).
          leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32)
        );
        CREATE INDEX audit_event_leaf_hash ON audit_event (leaf_hash);
        CREATE INDEX audit_event_bulletin ON audit_event (bulletin_id, position) WHERE bulletin_id IS NOT NULL;
        CREATE INDEX audit_event_agency ON audit_event (agency_id, position) WHERE agency_id IS NOT NULL;
        CREATE INDEX audit_event_actor ON audit_event (actor, position);
        CREATE INDEX audit_event_time ON audit_event (hub_time);

        CREATE FUNCTION refuse_audit_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
          FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
        CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
          FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

        CREATE TABLE bulletin (
          sequence bigint PRIMARY KEY,
          id text NOT NULL UNIQUE,
          issuer text NOT NULL REFERENCES member (id),
          jti text NOT NULL,
          kid text NOT NULL REFERENCES member_key (kid),
          jws bytea NOT NULL,
          jws_sha256 bytea NOT NULL,
          category text NOT NULL,
          tlp text NOT NULL,
          hub_time timestamptz NOT NULL,
          expires_at timestamptz NOT NULL,
          audit_position bigint NOT NULL REFERENCES audit_event (position),
          receipt bytea NOT NULL,
          UNIQUE (issuer, jti)
        );
        CREATE TRIGGER bulletin_append_only BEFORE UPDATE OR DELETE ON bulletin
          FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();

        CREATE TABLE delivery_decision (
          agency_id text NOT NULL REFERENCES agency (id),
          sequence bigint NOT NULL REFERENCES bulletin (sequence),
          decision text NOT NULL CHECK (decision IN ('deliver', 'deny')),
          code text NOT NULL,
          reason text NOT NULL,
          policy_version text NOT NULL,
          audit_position bigint NOT NULL REFERENCES audit_event (position),
          acked_at timestamptz,
          PRIMARY KEY (agency_id, sequence)
        );
        CREATE INDEX delivery_decision_deliverable ON delivery_decision (agency_id, sequence) WHERE decision = 'deliver';
        CREATE INDEX delivery_decision_unacked ON delivery_decision (agency_id, sequence)
          WHERE decision = 'deliver' AND acked_at IS NULL;

        CREATE TABLE agency_cursor (
          agency_id text PRIMARY KEY REFERENCES agency (id),
          acked_through bigint NOT NULL,
          updated_at timestamptz NOT NULL
        );
      `.execute(db);
    },
  },
  '0002_access_policy': {
    async up(db: Kysely<unknown>): Promise<void> {
      await sql`
        -- Every version of every sharing agreement, as the operator signed it. Never rewritten:
        -- a decision is explained from the versions in force when it was made.
        CREATE TABLE agreement_version (
          agreement_id text NOT NULL,
          version integer NOT NULL CHECK (version >= 1),
          record jsonb NOT NULL,
          ended boolean NOT NULL,
          end_reason text,
          operator_id text NOT NULL REFERENCES operator (id),
          statement bytea NOT NULL,
          recorded_at timestamptz NOT NULL,
          audit_position bigint NOT NULL REFERENCES audit_event (position),
          PRIMARY KEY (agreement_id, version)
        );
        CREATE TRIGGER agreement_version_append_only BEFORE UPDATE OR DELETE ON agreement_version
          FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();

        -- The Disclosures of each bulletin in the order the originator submitted them. Kept
        -- apart from the signed skeleton so that they can be purged at retention end (the
        -- bulletin row and its digests stay, and still verify).
        CREATE TABLE bulletin_disclosure (
          sequence bigint NOT NULL REFERENCES bulletin (sequence),
          position smallint NOT NULL CHECK (position >= 0),
          digest text NOT NULL,
          path text NOT NULL,
          kind text NOT NULL,
          encoded text,
          PRIMARY KEY (sequence, position)
        );

        -- What each delivery carried: the positions of the Disclosures released, the hub's
        -- Key Binding JWT over exactly that presentation, its sd_hash, and the withheld kinds.
        ALTER TABLE delivery_decision
          ADD COLUMN disclosed smallint[],
          ADD COLUMN kb_jwt text,
          ADD COLUMN sd_hash bytea,
          ADD COLUMN withheld jsonb NOT NULL DEFAULT '[]',
          ADD COLUMN agreements text[] NOT NULL DEFAULT '{}';
      `.execute(db);
    },
  },
  '0003_event_details': {
    async up(db: Kysely<unknown>): Promise<void> {
      await sql`
        -- What a person reads about an event (reason, policy version, operation), kept beside its
        -- leaf and bound to it by a salted commitment in the leaf. Never rewritten; it can only be
        -- purged (salt and details set to NULL), which leaves the tree and every proof intact.
        CREATE TABLE audit_event_detail (
          position bigint PRIMARY KEY REFERENCES audit_event (position),
          salt bytea CHECK (octet_length(salt) = 32),
          details bytea,
          purged_at timestamptz,
          CHECK ((salt IS NULL) = (details IS NULL) AND (details IS NULL) = (purged_at IS NOT NULL))
        );
        CREATE FUNCTION refuse_detail_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND OLD.details IS NOT NULL AND NEW.details IS NULL AND NEW.position = OLD.position THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'audit_event_detail can only be purged: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        CREATE TRIGGER audit_event_detail_purge_only BEFORE UPDATE OR DELETE ON audit_event_detail
          FOR EACH ROW EXECUTE FUNCTION refuse_detail_rewrite();
        CREATE TRIGGER audit_event_detail_no_truncate BEFORE TRUNCATE ON audit_event_detail
          FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();
      `.execute(db);
    },
  },
  '0004_audit_log': {
    async up(db: Kysely<unknown>): Promise<void> {
      await sql`
        -- The Merkle tree of the audit log in C2SP tlog-tiles form: tile (level, index) holds the
        -- hashes of tree level 8·level, indices 256·index to 256·index + 255. Only the integrator
        -- writes here. A partial tile may only grow by appending hashes; a full tile (256 hashes)
        -- never changes; nothing is deleted.
        CREATE TABLE audit_tile (
          level smallint NOT NULL CHECK (level BETWEEN 0 AND 7),
          index bigint NOT NULL CHECK (index >= 0),
          hashes bytea NOT NULL CHECK (octet_length(hashes) BETWEEN 32 AND 8192 AND octet_length(hashes) % 32 = 0),
          PRIMARY KEY (level, index)
        );
        CREATE FUNCTION refuse_tile_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND NEW.level = OLD.level AND NEW.index = OLD.index
             AND octet_length(OLD.hashes) < 8192 AND octet_length(NEW.hashes) > octet_length(OLD.hashes)
             AND substring(NEW.hashes FROM 1 FOR octet_length(OLD.hashes)) = OLD.hashes THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'audit_tile only grows by appending: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        CREATE TRIGGER audit_tile_append_only BEFORE UPDATE OR DELETE ON audit_tile
          FOR EACH ROW EXECUTE FUNCTION refuse_tile_rewrite();
        CREATE TRIGGER audit_tile_no_truncate BEFORE TRUNCATE ON audit_tile
          FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

        -- Every checkpoint the hub signed: a C2SP signed note over origin, size and root hash.
        -- The integrator signs one after each batch, only after checking that the tree it
        -- extends is the one of the previous checkpoint.
        CREATE TABLE audit_checkpoint (
          tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),
          root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
          note text NOT NULL,
          signed_at timestamptz NOT NULL
        );
        CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
          FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
        CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
          FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

        -- Witness cosignatures (C2SP tlog-cosignature, cosignature/v1), one per member and checkpoint.
        CREATE TABLE audit_cosignature (
          tree_size bigint NOT NULL REFERENCES audit_checkpoint (tree_size),
          member_id text NOT NULL,
          signature_line text NOT NULL,
          cosigned_at timestamptz NOT NULL,
          PRIMARY KEY (tree_size, member_id)
        );
        CREATE INDEX audit_cosignature_member ON audit_cosignature (member_id, tree_size);
        CREATE TRIGGER audit_cosignature_append_only BEFORE UPDATE OR DELETE ON audit_cosignature
          FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();

        -- The integrator's compact range (the roots of the perfect subtrees covering the tree,
        -- largest first), so that an append costs O(log n) without reading tiles back.
        CREATE TABLE audit_state (
          singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
          tree_size bigint NOT NULL CHECK (tree_size >= 0),
          frontier bytea[] NOT NULL
        );
        INSERT INTO audit_state (singleton, tree_size, frontier) VALUES (true, 0, '{}');
      `.execute(db);
    },
  },
  '0005_key_lifecycle': keyLifecycleMigration,
  '0006_cooperation_requests': cooperationRequestsMigration,
  '0007_lifecycle_retention': lifecycleRetentionMigration,
  '0008_request_retention': requestRetentionMigration,
  '0009_ledger_signal': ledgerSignalMigration,
  '0010_index_diet': indexDietMigration,
  '0011_ledger_references': ledgerReferencesMigration,
  '0012_key_binding_at_send': keyBindingAtSendMigration,
  '0013_directory_version': directoryVersionMigration,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema up to date; safe to run from several processes at once (kysely locks). */
export async function migrateHubDatabase(db: Kysely<HubDatabase>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed !== undefined) {
    throw new CorridorError('INTERNAL', `database migration ${failed?.migrationName ?? ''} failed`, { cause: error });
  }
}
