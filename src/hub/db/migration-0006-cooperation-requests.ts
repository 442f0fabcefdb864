/**
 * Migration 0006: cooperation requests. A member names its central authority in the registry;
 * a request is a row of `cooperation_request` whose identity never changes and whose state moves
 * only forward (a trigger); every transition is a row of `request_transition` beside its audit
 * event, the signed document that made it (request, answer, delay notice, withdrawal) a row of
 * `request_document` with its Disclosures kept apart (so that they can be purged while the
 * signature still verifies), and each agency notified of it a row of `request_notice` with what
 * it was presented. Everything but the request's state is insert-only.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const cooperationRequestsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      -- Validated against the agencies by the region file's parser; no foreign key, since the
      -- registry import writes members before agencies.
      ALTER TABLE member ADD COLUMN central_authority text;

      CREATE TABLE cooperation_request (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        requester text NOT NULL REFERENCES member (id),
        addressee text NOT NULL REFERENCES member (id),
        addressee_authority text NOT NULL REFERENCES agency (id),
        requesting_agency text REFERENCES agency (id),
        type text NOT NULL CHECK (type IN ('travel-document-verification', 'nationality-verification', 'information-request', 'dissemination-permission', 'general')),
        urgency text NOT NULL CHECK (urgency IN ('urgent', 'high', 'normal')),
        state text NOT NULL CHECK (state IN ('open', 'answered', 'delayed', 'overdue', 'withdrawn')),
        submitted_at timestamptz NOT NULL,
        -- The deadline the urgency set, and when an answer is due now (a delay notice moves it).
        deadline_at timestamptz NOT NULL,
        due_at timestamptz NOT NULL,
        closed_at timestamptz,
        outcome text,
        expires_at timestamptz NOT NULL,
        -- The audit event of the latest transition.
        audit_position bigint NOT NULL REFERENCES audit_event (position),
        CHECK (requester <> addressee),
        CHECK (starts_with(id, requester || ':')),
        CHECK ((state IN ('answered', 'withdrawn')) = (closed_at IS NOT NULL)),
        CHECK ((state = 'answered') = (outcome IS NOT NULL))
      );
      CREATE INDEX cooperation_request_due ON cooperation_request (due_at) WHERE state IN ('open', 'delayed');
      CREATE INDEX cooperation_request_requester ON cooperation_request (requester, seq);
      CREATE INDEX cooperation_request_addressee ON cooperation_request (addressee, seq);

      -- A request's identity never changes; its state only moves forward, and only with a newer
      -- audit event; nothing is deleted.
      CREATE FUNCTION cooperation_request_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP <> 'UPDATE' THEN
          RAISE EXCEPTION 'cooperation_request rows are never removed: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.id <> OLD.id OR NEW.requester <> OLD.requester OR NEW.addressee <> OLD.addressee
           OR NEW.addressee_authority <> OLD.addressee_authority
           OR NEW.requesting_agency IS DISTINCT FROM OLD.requesting_agency
           OR NEW.type <> OLD.type OR NEW.urgency <> OLD.urgency OR NEW.submitted_at <> OLD.submitted_at
           OR NEW.deadline_at <> OLD.deadline_at OR NEW.expires_at <> OLD.expires_at THEN
          RAISE EXCEPTION 'cooperation_request %: a request''s identity never changes', OLD.id USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.audit_position <= OLD.audit_position THEN
          RAISE EXCEPTION 'cooperation_request %: only a recorded transition changes a request', OLD.id USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF (OLD.state, NEW.state) NOT IN (
          ('open', 'answered'), ('open', 'delayed'), ('open', 'overdue'), ('open', 'withdrawn'),
          ('delayed', 'answered'), ('delayed', 'delayed'), ('delayed', 'overdue'), ('delayed', 'withdrawn'),
          ('overdue', 'answered'), ('overdue', 'delayed'), ('overdue', 'withdrawn')) THEN
          RAISE EXCEPTION 'cooperation_request %: % to % is not a forward transition', OLD.id, OLD.state, NEW.state USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END;
      $$;
      CREATE TRIGGER cooperation_request_forward_only BEFORE UPDATE OR DELETE ON cooperation_request
        FOR EACH ROW EXECUTE FUNCTION cooperation_request_forward_only();
      CREATE TRIGGER cooperation_request_no_truncate BEFORE TRUNCATE ON cooperation_request
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      -- Every transition, beside its audit event (REQUEST_SUBMITTED … REQUEST_WITHDRAWN).
      CREATE TABLE request_transition (
        audit_position bigint PRIMARY KEY REFERENCES audit_event (position),
        request_id text NOT NULL REFERENCES cooperation_request (id),
        from_state text,
        to_state text NOT NULL,
        actor text NOT NULL,
        due_at timestamptz NOT NULL,
        hub_time timestamptz NOT NULL
      );
      CREATE INDEX request_transition_request ON request_transition (request_id, audit_position);
      CREATE TRIGGER request_transition_append_only BEFORE UPDATE OR DELETE ON request_transition
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER request_transition_no_truncate BEFORE TRUNCATE ON request_transition
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      -- The signed document of a transition: its Issuer-signed JWT, exactly as received.
      CREATE TABLE request_document (
        audit_position bigint PRIMARY KEY REFERENCES request_transition (audit_position),
        request_id text NOT NULL REFERENCES cooperation_request (id),
        kind text NOT NULL CHECK (kind IN ('request', 'answer', 'delay', 'withdrawal')),
        issuer text NOT NULL REFERENCES member (id),
        jti text NOT NULL,
        kid text NOT NULL REFERENCES member_key (kid),
        jws bytea NOT NULL,
        jws_sha256 bytea NOT NULL CHECK (octet_length(jws_sha256) = 32),
        hub_time timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        UNIQUE (issuer, jti)
      );
      CREATE TRIGGER request_document_append_only BEFORE UPDATE OR DELETE ON request_document
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER request_document_no_truncate BEFORE TRUNCATE ON request_document
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();

      -- A document's Disclosures in submitted order, apart from its signed skeleton (as
      -- bulletin_disclosure): purgeable at retention end while the signature still verifies.
      CREATE TABLE request_disclosure (
        audit_position bigint NOT NULL REFERENCES request_document (audit_position),
        position smallint NOT NULL CHECK (position >= 0),
        digest text NOT NULL,
        path text NOT NULL,
        kind text NOT NULL,
        encoded text,
        PRIMARY KEY (audit_position, position)
      );

      -- Who was notified of each transition, and what it was presented: the positions of the
      -- Disclosures released, the hub's Key Binding JWT over exactly that, the decision and why.
      CREATE TABLE request_notice (
        audit_position bigint NOT NULL REFERENCES request_transition (audit_position),
        agency_id text NOT NULL REFERENCES agency (id),
        side text NOT NULL CHECK (side IN ('requester', 'addressee')),
        -- NULL for a transition without a document (overdue).
        decision text CHECK (decision IN ('deliver', 'deny')),
        code text NOT NULL,
        reason text NOT NULL,
        policy_version text NOT NULL,
        disclosed smallint[],
        kb_jwt text,
        sd_hash bytea,
        withheld jsonb NOT NULL DEFAULT '[]',
        agreements text[] NOT NULL DEFAULT '{}',
        -- The DELIVER or DENY event of the decision.
        decision_position bigint REFERENCES audit_event (position),
        PRIMARY KEY (audit_position, agency_id),
        CHECK ((decision = 'deliver') = (kb_jwt IS NOT NULL AND sd_hash IS NOT NULL AND disclosed IS NOT NULL))
      );
      CREATE INDEX request_notice_agency ON request_notice (agency_id, audit_position);
      CREATE TRIGGER request_notice_append_only BEFORE UPDATE OR DELETE ON request_notice
        FOR EACH ROW EXECUTE FUNCTION refuse_audit_rewrite();
      CREATE TRIGGER request_notice_no_truncate BEFORE TRUNCATE ON request_notice
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_rewrite();
    `.execute(db);
  },
};
