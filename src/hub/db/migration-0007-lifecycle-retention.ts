/**
 * Migration 0007: a bulletin's lifecycle, its retention and its search index.
 *
 * - `bulletin_follow_up`: one row per follow-up (update, correction, withdrawal), naming the
 *   bulletin it supersedes and its thread's original; insert-only. A bulletin is followed up at
 *   most once (the thread is a chain), which the UNIQUE constraint holds even against a bug.
 * - `bulletin_retention`: when each bulletin's retention ends and why, and when it was purged (by
 *   which audited event). Only the purge may change a row, once.
 * - `bulletin_search` and `bulletin_disclosure_text`: the search index. The first holds what the
 *   bulletin says in clear (no personal data is ever in clear); the second the text of each
 *   Disclosure, searched only where the Disclosure was released, and deleted when it is purged.
 *
 * Bulletins recorded before this migration get their retention (from `exp` and the agreements
 * their deliveries rest on) and their index entries here.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';
import { disclosureSearchText, searchFacets } from '../../core/search-facets.js';

export const lifecycleRetentionMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      CREATE TABLE bulletin_follow_up (
        sequence bigint PRIMARY KEY REFERENCES bulletin (sequence),
        bulletin_id text NOT NULL UNIQUE,
        supersedes_sequence bigint NOT NULL UNIQUE REFERENCES bulletin (sequence),
        supersedes_id text NOT NULL,
        -- The thread's original: the first bulletin of the chain.
        root_sequence bigint NOT NULL REFERENCES bulletin (sequence),
        action text NOT NULL CHECK (action IN ('update', 'correction', 'withdrawal')),
        -- The BULLETIN_SUPERSEDED or BULLETIN_WITHDRAWN event.
        audit_position bigint NOT NULL UNIQUE REFERENCES audit_event (position),
        recorded_at timestamptz NOT NULL,
        CHECK (supersedes_sequence < sequence AND root_sequence <= supersedes_sequence)
      );
      CREATE INDEX bulletin_follow_up_root ON bulletin_follow_up (root_sequence, sequence);
      CREATE TRIGGER bulletin_follow_up_append_only BEFORE UPDATE OR DELETE ON bulletin_follow_up
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER bulletin_follow_up_no_truncate BEFORE TRUNCATE ON bulletin_follow_up
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      CREATE TABLE bulletin_retention (
        sequence bigint PRIMARY KEY REFERENCES bulletin (sequence),
        ends_at timestamptz NOT NULL,
        -- What ends it: 'exp', 'agreement:<id>@<version>' or 'region-default'.
        basis text NOT NULL,
        purged_at timestamptz,
        -- The RETENTION_PURGE event.
        purge_position bigint UNIQUE REFERENCES audit_event (position),
        CHECK ((purged_at IS NULL) = (purge_position IS NULL))
      );
      CREATE INDEX bulletin_retention_due ON bulletin_retention (ends_at) WHERE purged_at IS NULL;
      CREATE FUNCTION bulletin_retention_purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
           AND NEW.sequence = OLD.sequence AND NEW.ends_at = OLD.ends_at AND NEW.basis = OLD.basis THEN
          RETURN NEW;
        END IF;
        RAISE EXCEPTION 'bulletin_retention can only record a purge, once: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END;
      $$;
      CREATE TRIGGER bulletin_retention_purge_only BEFORE UPDATE OR DELETE ON bulletin_retention
        FOR EACH ROW EXECUTE FUNCTION bulletin_retention_purge_only();
      CREATE TRIGGER bulletin_retention_no_truncate BEFORE TRUNCATE ON bulletin_retention
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      CREATE TABLE bulletin_search (
        sequence bigint PRIMARY KEY REFERENCES bulletin (sequence),
        issuer text NOT NULL,
        category text NOT NULL,
        hub_time timestamptz NOT NULL,
        states text[] NOT NULL,
        waypoint_states text[] NOT NULL,
        -- Lower-cased, inner spaces collapsed (core/search-facets.ts normalisePlace).
        waypoint_places text[] NOT NULL,
        title text NOT NULL,
        -- The 'simple' configuration: no stemming, so names and places match in any language.
        document tsvector NOT NULL
      );
      CREATE INDEX bulletin_search_document ON bulletin_search USING gin (document);
      CREATE INDEX bulletin_search_states ON bulletin_search USING gin (states);
      CREATE INDEX bulletin_search_waypoint_states ON bulletin_search USING gin (waypoint_states);
      CREATE INDEX bulletin_search_waypoint_places ON bulletin_search USING gin (waypoint_places);
      CREATE INDEX bulletin_search_category ON bulletin_search (category, sequence);
      CREATE INDEX bulletin_search_time ON bulletin_search (hub_time);

      CREATE TABLE bulletin_disclosure_text (
        sequence bigint NOT NULL,
        position smallint NOT NULL,
        document tsvector NOT NULL,
        PRIMARY KEY (sequence, position),
        FOREIGN KEY (sequence, position) REFERENCES bulletin_disclosure (sequence, position)
      );
      CREATE INDEX bulletin_disclosure_text_document ON bulletin_disclosure_text USING gin (document);
    `.execute(db);

    // Retention of the bulletins recorded so far: the earliest of exp and the limits of the
    // agreements their deliveries rest on (the region default is applied by the purge job).
    await sql`
      INSERT INTO bulletin_retention (sequence, ends_at, basis)
      SELECT b.sequence,
             CASE WHEN a.ends_at IS NOT NULL AND a.ends_at < b.expires_at THEN a.ends_at ELSE b.expires_at END,
             CASE WHEN a.ends_at IS NOT NULL AND a.ends_at < b.expires_at THEN 'agreement:' || a.label ELSE 'exp' END
      FROM bulletin b
      LEFT JOIN LATERAL (
        SELECT b.hub_time + make_interval(days => (v.record ->> 'retention_days')::int) AS ends_at, l.label
        FROM delivery_decision d
        CROSS JOIN LATERAL unnest(d.agreements) AS l(label)
        JOIN agreement_version v ON v.agreement_id || '@' || v.version = l.label
        WHERE d.sequence = b.sequence AND d.decision = 'deliver' AND v.record ? 'retention_days'
        ORDER BY 1, 2
        LIMIT 1
      ) a ON true
    `.execute(db);

    const bulletins = await sql<{ sequence: bigint; issuer: string; category: string; hub_time: Date; jws: Uint8Array }>`
      SELECT sequence, issuer, category, hub_time, jws FROM bulletin ORDER BY sequence
    `.execute(db);
    for (const bulletin of bulletins.rows) {
      const facets = searchFacets(payloadOf(bulletin.jws), bulletin.issuer);
      await sql`
        INSERT INTO bulletin_search (sequence, issuer, category, hub_time, states, waypoint_states, waypoint_places, title, document)
        VALUES (${bulletin.sequence}, ${bulletin.issuer}, ${bulletin.category}, ${bulletin.hub_time}, ${facets.states}::text[],
                ${facets.waypointStates}::text[], ${facets.waypointPlaces}::text[], ${facets.title}, to_tsvector('simple', ${facets.text}))
      `.execute(db);
    }
    const disclosures = await sql<{ sequence: bigint; position: number; encoded: string }>`
      SELECT sequence, position, encoded FROM bulletin_disclosure WHERE encoded IS NOT NULL ORDER BY sequence, position
    `.execute(db);
    for (const disclosure of disclosures.rows) {
      const text = disclosureSearchText(disclosure.encoded);
      if (text === undefined) continue;
      await sql`
        INSERT INTO bulletin_disclosure_text (sequence, position, document)
        VALUES (${disclosure.sequence}, ${disclosure.position}, to_tsvector('simple', ${text}))
      `.execute(db);
    }
  },
};

/** The claims of a stored compact JWS (verified when it was published); an empty object if unreadable. */
function payloadOf(jws: Uint8Array): unknown {
  const parts = Buffer.from(jws).toString('latin1').split('.');
  try {
    return JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as unknown;
  } catch {
    return {};
  }
}
