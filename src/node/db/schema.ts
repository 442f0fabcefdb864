/**
 * Kysely table types for a member node's database. Migrations in `migrations.ts` are the source
 * of truth; this file only mirrors them for the type checker.
 */
import type { ColumnType, Generated } from 'kysely';

type Int8 = ColumnType<bigint, bigint | number, bigint | number>;
type NullableInt8 = ColumnType<bigint | null, bigint | number | null, bigint | number | null>;
type Timestamp = ColumnType<Date, Date, Date>;
type NullableTimestamp = ColumnType<Date | null, Date | null, Date | null>;
/** jsonb: written as JSON text, read back as an unvalidated value that the reader parses. */
type Jsonb = ColumnType<unknown, string, string>;

/** The state of a bulletin in the outbox. */
export type OutboxState = 'pending' | 'published' | 'refused';

/** The tables of a node database. */
export interface NodeDatabase {
  /** Bulletins this node signed, kept until the hub's receipt arrives (store and forward). */
  outbox: {
    bulletin_id: string;
    /** Strict submission order; timestamps from an injected clock can tie. */
    seq: Generated<bigint>;
    member_id: string;
    jti: string;
    /** The exact signed bytes, sent unchanged on every retry. */
    jws: Uint8Array;
    /** Earlier signed versions of this bulletin, oldest first. */
    superseded: ColumnType<Uint8Array[], Uint8Array[] | undefined, Uint8Array[]>;
    /** SHA-256 of the canonical draft, to tell a resubmission from a reused jti. */
    draft_sha256: Uint8Array;
    expires_at: Timestamp;
    state: OutboxState;
    receipt: Uint8Array | null;
    sequence: NullableInt8;
    audit_position: NullableInt8;
    refusal: string | null;
    attempts: number;
    next_attempt_at: Timestamp;
    created_at: Timestamp;
    updated_at: Timestamp;
    /** A C2SP tlog-proof of the PUBLISH event, stored once the audit monitor verified it (migration 0003). */
    tlog_proof: ColumnType<string | null, string | null | undefined, string | null>;
  };
  /** Member signing keys, pinned to their member the first time the hub's directory names them. */
  pinned_key: { kid: string; member_id: string; alg: string; jwk: Jsonb; first_seen: Timestamp };
  /** What the node knows of each pinned key's lifecycle; each time is written once. */
  pinned_key_state: {
    kid: string;
    accepted_by: 'first-sight' | 'rotation';
    rotation_statement: Uint8Array | null;
    signed_by_kid: string | null;
    activated_at: NullableTimestamp;
    retired_at: NullableTimestamp;
    revoked_at: NullableTimestamp;
    compromised_since: NullableTimestamp;
    updated_at: Timestamp;
  };
  /** Deliveries the agency must no longer rely on: their signing key was compromised when they were logged. */
  delivery_marking: {
    agency_id: string;
    bulletin_id: string;
    kid: string;
    compromised_since: Timestamp;
    revoked_at: Timestamp;
    reason: string;
    source: 'hub' | 'local';
    audit_position: NullableInt8;
    marked_at: Timestamp;
  };
  /** The hub's receipt-signing keys, pinned the first time they are seen. */
  hub_key: { kid: string; alg: string; jwk: Jsonb; first_seen: Timestamp };
  /** Verified deliveries, stored before they are acknowledged. */
  inbox: {
    agency_id: string;
    bulletin_id: string;
    cursor: Int8;
    jws: Uint8Array;
    receipt: Uint8Array;
    reason: string;
    policy_version: string;
    received_at: Timestamp;
    /** When the hub confirmed our acknowledgement; null until then (re-sent after a restart). */
    acked_at: NullableTimestamp;
    /** The key that signed it and the hub time it was logged (null only if unreadable in an old row). */
    kid: ColumnType<string | null, string | null | undefined, string | null>;
    hub_time: ColumnType<Date | null, Date | null | undefined, Date | null>;
  };
  subscription_cursor: {
    agency_id: string;
    cursor: Int8;
    updated_at: Timestamp;
    /** The audit position of the last marking notice stored. */
    notice_position: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  };
  /** Deliveries that failed verification: never acknowledged, never handed on; kept as evidence. */
  rejected_delivery: {
    id: Generated<bigint>;
    agency_id: string;
    cursor: Int8;
    bulletin_id: string;
    code: string;
    reason: string;
    jws: Uint8Array;
    received_at: Timestamp;
  };
  /** Notices of cooperation requests an agency received (migration 0004). */
  request_notice: {
    agency_id: string;
    audit_position: Int8;
    request_id: string;
    state: string;
    side: 'requester' | 'addressee';
    hub_time: Timestamp;
    due_at: Timestamp;
    sd_jwt: Uint8Array | null;
    reason: string;
    rejection: string | null;
    received_at: Timestamp;
  };
}
