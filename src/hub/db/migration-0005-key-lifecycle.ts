/**
 * Migration 0005: the key directory's lifecycle. A member key is pending, active, retired,
 * revoked or rejected, with the hub time of each transition; a trigger admits only the forward
 * transitions and never lets a key's identity or a recorded time change. Every transition is
 * also a row of `member_key_change` (insert-only, one per audit event), and a bulletin marked
 * because its key was compromised is a row of `bulletin_marking` (insert-only).
 *
 * Keys recorded before this migration were active from when they were added; a retired one gets
 * the hub time of its KEY_RETIRED event, read from the audit leaf that recorded it.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { AuditLeafSchema, EventKind } from '../../gen/corridor/v1/audit_pb.js';

export const keyLifecycleMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      ALTER TABLE member_key DROP CONSTRAINT member_key_status_check;
      ALTER TABLE member_key
        ADD COLUMN source text NOT NULL DEFAULT 'region' CHECK (source IN ('region', 'rotation')),
        ADD COLUMN activated_at timestamptz,
        ADD COLUMN retired_at timestamptz,
        ADD COLUMN revoked_at timestamptz,
        ADD COLUMN rejected_at timestamptz,
        ADD COLUMN compromised_since timestamptz,
        ADD COLUMN reason text,
        ADD COLUMN rotation_statement bytea,
        ADD COLUMN signed_by_kid text REFERENCES member_key (kid);
      ALTER TABLE member_key ALTER COLUMN source DROP DEFAULT;
      UPDATE member_key SET activated_at = added_at;

      CREATE TABLE member_key_change (
        position bigint PRIMARY KEY REFERENCES audit_event (position),
        kid text NOT NULL REFERENCES member_key (kid),
        member_id text NOT NULL REFERENCES member (id),
        -- NULL when the key was added or proposed.
        from_status text,
        to_status text NOT NULL,
        actor text NOT NULL,
        -- The signed statement behind the change (the member's rotation statement, the
        -- operator's key change), exactly as received; NULL for the region file's changes.
        statement bytea,
        changed_at timestamptz NOT NULL
      );
      CREATE INDEX member_key_change_kid ON member_key_change (kid, position);
      CREATE TRIGGER member_key_change_append_only BEFORE UPDATE OR DELETE ON member_key_change
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER member_key_change_no_truncate BEFORE TRUNCATE ON member_key_change
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      CREATE TABLE bulletin_marking (
        sequence bigint PRIMARY KEY REFERENCES bulletin (sequence),
        bulletin_id text NOT NULL UNIQUE,
        kid text NOT NULL REFERENCES member_key (kid),
        code text NOT NULL,
        compromised_since timestamptz NOT NULL,
        revoked_at timestamptz NOT NULL,
        reason text NOT NULL,
        audit_position bigint NOT NULL UNIQUE REFERENCES audit_event (position),
        marked_at timestamptz NOT NULL
      );
      CREATE TRIGGER bulletin_marking_append_only BEFORE UPDATE OR DELETE ON bulletin_marking
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER bulletin_marking_no_truncate BEFORE TRUNCATE ON bulletin_marking
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE INDEX bulletin_kid_time ON bulletin (kid, hub_time);
    `.execute(db);

    // The history of the keys recorded so far, from the audit leaves of their events.
    const events = await sql<{ position: bigint; kind: number; hub_time: Date; actor: string; leaf: Uint8Array }>`
      SELECT position, kind, hub_time, actor, leaf FROM audit_event WHERE kind IN (${EventKind.KEY_ADDED}, ${EventKind.KEY_RETIRED}) ORDER BY position
    `.execute(db);
    for (const event of events.rows) {
      const kid = fromBinary(AuditLeafSchema, event.leaf).objectId;
      const key = await sql<{ member_id: string }>`SELECT member_id FROM member_key WHERE kid = ${kid}`.execute(db);
      const member = key.rows[0]?.member_id;
      if (member === undefined) continue;
      const added = event.kind === EventKind.KEY_ADDED;
      if (!added) await sql`UPDATE member_key SET retired_at = ${event.hub_time} WHERE kid = ${kid} AND status = 'retired' AND retired_at IS NULL`.execute(db);
      await sql`
        INSERT INTO member_key_change (position, kid, member_id, from_status, to_status, actor, statement, changed_at)
        VALUES (${event.position}, ${kid}, ${member}, ${added ? null : 'active'}, ${added ? 'active' : 'retired'}, ${event.actor}, NULL, ${event.hub_time})
      `.execute(db);
    }

    await sql`
      -- A retired key whose event could not be found keeps the only time known for it.
      UPDATE member_key SET retired_at = added_at WHERE status = 'retired' AND retired_at IS NULL;

      ALTER TABLE member_key
        ADD CONSTRAINT member_key_status_check CHECK (status IN ('pending', 'active', 'retired', 'revoked', 'rejected')),
        -- Each state has exactly the times of the transitions that lead to it.
        ADD CONSTRAINT member_key_times_check CHECK (
          CASE status
            WHEN 'pending' THEN activated_at IS NULL AND retired_at IS NULL AND revoked_at IS NULL AND rejected_at IS NULL
            WHEN 'active' THEN activated_at IS NOT NULL AND retired_at IS NULL AND revoked_at IS NULL AND rejected_at IS NULL
            WHEN 'retired' THEN activated_at IS NOT NULL AND retired_at IS NOT NULL AND revoked_at IS NULL AND rejected_at IS NULL
            WHEN 'revoked' THEN activated_at IS NOT NULL AND revoked_at IS NOT NULL AND rejected_at IS NULL
            ELSE activated_at IS NULL AND retired_at IS NULL AND revoked_at IS NULL AND rejected_at IS NOT NULL
          END
        ),
        ADD CONSTRAINT member_key_compromise_check CHECK (compromised_since IS NULL OR (status = 'revoked' AND compromised_since <= revoked_at)),
        ADD CONSTRAINT member_key_rotation_check CHECK ((source = 'rotation') = (rotation_statement IS NOT NULL AND signed_by_kid IS NOT NULL));

      -- Only forward transitions; a key's identity, its statement and every recorded time are
      -- written once and never changed; nothing is deleted.
      CREATE FUNCTION member_key_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP <> 'UPDATE' THEN
          RAISE EXCEPTION 'member_key rows are never removed: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.kid <> OLD.kid OR NEW.member_id <> OLD.member_id OR NEW.alg <> OLD.alg OR NEW.jwk <> OLD.jwk
           OR NEW.added_at <> OLD.added_at OR NEW.source <> OLD.source
           OR NEW.rotation_statement IS DISTINCT FROM OLD.rotation_statement
           OR NEW.signed_by_kid IS DISTINCT FROM OLD.signed_by_kid THEN
          RAISE EXCEPTION 'member_key %: a key''s identity never changes', OLD.kid USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF (OLD.activated_at IS NOT NULL AND NEW.activated_at IS DISTINCT FROM OLD.activated_at)
           OR (OLD.retired_at IS NOT NULL AND NEW.retired_at IS DISTINCT FROM OLD.retired_at)
           OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
           OR (OLD.rejected_at IS NOT NULL AND NEW.rejected_at IS DISTINCT FROM OLD.rejected_at)
           OR (OLD.compromised_since IS NOT NULL AND NEW.compromised_since IS DISTINCT FROM OLD.compromised_since)
           OR (OLD.reason IS NOT NULL AND NEW.reason IS DISTINCT FROM OLD.reason) THEN
          RAISE EXCEPTION 'member_key %: a recorded time or reason never changes', OLD.kid USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.status = OLD.status THEN
          IF ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
            RAISE EXCEPTION 'member_key %: only a transition changes a key', OLD.kid USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN NEW;
        END IF;
        IF (OLD.status, NEW.status) NOT IN (('pending', 'active'), ('pending', 'rejected'), ('active', 'retired'), ('active', 'revoked'), ('retired', 'revoked')) THEN
          RAISE EXCEPTION 'member_key %: % to % is not a forward transition', OLD.kid, OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END;
      $$;
      CREATE TRIGGER member_key_forward_only BEFORE UPDATE OR DELETE ON member_key
        FOR EACH ROW EXECUTE FUNCTION member_key_forward_only();
      CREATE TRIGGER member_key_no_truncate BEFORE TRUNCATE ON member_key
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();
    `.execute(db);
  },
};
