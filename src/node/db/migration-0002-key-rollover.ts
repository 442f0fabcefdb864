/**
 * Node migration 0002: key rollover and compromise.
 *
 * - `pinned_key_state`: what the node knows of each pinned key's lifecycle (when it became
 *   active, was retired or revoked, and since when it is compromised) and how the pin was
 *   accepted (first sight of the member, or a rotation statement verified with a key already
 *   pinned). Each time is written once and never changed or removed: a directory that later
 *   claims a later retirement, or no revocation, cannot widen what the node trusts.
 * - `delivery_marking`: deliveries this agency must no longer rely on, from the hub's notice or
 *   from the node's own check against the keys it trusts.
 * - `inbox.kid`, `inbox.hub_time`: the signing key and logged time of each stored delivery, so a
 *   compromise learnt later finds what it affects; filled in for deliveries already stored.
 * - `subscription_cursor.notice_position`: the last marking notice stored, to resume after it.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const keyRolloverMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE pinned_key_state (
        kid text PRIMARY KEY REFERENCES pinned_key (kid),
        accepted_by text NOT NULL CHECK (accepted_by IN ('first-sight', 'rotation')),
        -- The member's rotation statement and the pinned key that signed it, for a rotation.
        rotation_statement bytea,
        signed_by_kid text REFERENCES pinned_key (kid),
        activated_at timestamptz,
        retired_at timestamptz,
        revoked_at timestamptz,
        compromised_since timestamptz,
        updated_at timestamptz NOT NULL,
        CHECK ((accepted_by = 'rotation') = (rotation_statement IS NOT NULL AND signed_by_kid IS NOT NULL)),
        CHECK (compromised_since IS NULL OR revoked_at IS NOT NULL)
      );
      INSERT INTO pinned_key_state (kid, accepted_by, updated_at) SELECT kid, 'first-sight', first_seen FROM pinned_key;

      CREATE FUNCTION pinned_key_state_set_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP <> 'UPDATE' THEN
          RAISE EXCEPTION 'pinned_key_state rows are never removed: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.kid <> OLD.kid OR NEW.accepted_by <> OLD.accepted_by
           OR NEW.rotation_statement IS DISTINCT FROM OLD.rotation_statement
           OR NEW.signed_by_kid IS DISTINCT FROM OLD.signed_by_kid
           OR (OLD.activated_at IS NOT NULL AND NEW.activated_at IS DISTINCT FROM OLD.activated_at)
           OR (OLD.retired_at IS NOT NULL AND NEW.retired_at IS DISTINCT FROM OLD.retired_at)
           OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
           OR (OLD.compromised_since IS NOT NULL AND NEW.compromised_since IS DISTINCT FROM OLD.compromised_since) THEN
          RAISE EXCEPTION 'pinned_key_state %: what the node has recorded of a key never changes', OLD.kid USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END;
      $$;
      CREATE TRIGGER pinned_key_state_set_once BEFORE UPDATE OR DELETE ON pinned_key_state
        FOR EACH ROW EXECUTE FUNCTION pinned_key_state_set_once();

      CREATE TABLE delivery_marking (
        agency_id text NOT NULL,
        bulletin_id text NOT NULL,
        kid text NOT NULL,
        compromised_since timestamptz NOT NULL,
        revoked_at timestamptz NOT NULL,
        reason text NOT NULL,
        -- 'hub': the hub's notice or a delivery's marking; 'local': this node's own check.
        source text NOT NULL CHECK (source IN ('hub', 'local')),
        audit_position bigint,
        marked_at timestamptz NOT NULL,
        PRIMARY KEY (agency_id, bulletin_id)
      );

      ALTER TABLE inbox ADD COLUMN kid text, ADD COLUMN hub_time timestamptz;
      CREATE INDEX inbox_kid_time ON inbox (kid, hub_time);
      ALTER TABLE subscription_cursor ADD COLUMN notice_position bigint NOT NULL DEFAULT 0 CHECK (notice_position >= 0);
    `.execute(db);

    // Deliveries stored before: their kid from the JWS header, their hub time from the receipt.
    const stored = await sql<{ agency_id: string; bulletin_id: string; jws: Uint8Array; receipt: Uint8Array }>`
      SELECT agency_id, bulletin_id, jws, receipt FROM inbox
    `.execute(db);
    for (const row of stored.rows) {
      const kid = stringField(jsonPart(row.jws, 0), 'kid');
      const hubTimeMs = numberField(jsonPart(row.receipt, 1), 'hub_time_ms');
      await sql`
        UPDATE inbox SET kid = ${kid ?? null}, hub_time = ${hubTimeMs === undefined ? null : new Date(hubTimeMs)}
        WHERE agency_id = ${row.agency_id} AND bulletin_id = ${row.bulletin_id}
      `.execute(db);
    }
  },
};

/** A part of a compact JWS (0 header, 1 payload) as JSON; undefined when it is not. These bytes were verified when stored. */
function jsonPart(bytes: Uint8Array, index: number): unknown {
  const part = Buffer.from(bytes).toString('latin1').split('~')[0]?.split('.')[index];
  if (part === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function stringField(value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field: unknown = (value as Record<string, unknown>)[name];
  return typeof field === 'string' ? field : undefined;
}

function numberField(value: unknown, name: string): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field: unknown = (value as Record<string, unknown>)[name];
  return typeof field === 'number' && Number.isSafeInteger(field) ? field : undefined;
}
