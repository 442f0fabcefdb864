/** Kysely table types for the hub database. Migrations in `migrations.ts` are the source of truth. */
import type { ColumnType, Generated } from 'kysely';

type Int8 = ColumnType<bigint, bigint | number, bigint | number>;
type Timestamp = ColumnType<Date, Date, Date>;
type NullableTimestamp = ColumnType<Date | null, Date | null | undefined, Date | null>;

export interface HubDatabase {
  member: {
    id: string;
    name: string;
    active: ColumnType<boolean, boolean | undefined, boolean>;
    record_sha256: Uint8Array;
    updated_at: Timestamp;
    /** The member's designated central authority, an agency id (migration 0006). */
    central_authority: ColumnType<string | null, string | null | undefined, string | null>;
  };
  member_key: {
    kid: string;
    member_id: string;
    alg: string;
    jwk: ColumnType<PublicJwkRow, string, string>;
    /** pending, active, retired, revoked or rejected (migration 0005). */
    status: string;
    added_at: Timestamp;
    source: 'region' | 'rotation';
    activated_at: NullableTimestamp;
    retired_at: NullableTimestamp;
    revoked_at: NullableTimestamp;
    rejected_at: NullableTimestamp;
    compromised_since: NullableTimestamp;
    reason: string | null;
    rotation_statement: Uint8Array | null;
    signed_by_kid: string | null;
  };
  /** One row per key transition, beside its audit event; insert-only. */
  member_key_change: {
    position: Int8;
    kid: string;
    member_id: string;
    from_status: string | null;
    to_status: string;
    actor: string;
    statement: Uint8Array | null;
    changed_at: Timestamp;
  };
  /** A bulletin marked because its signing key was revoked as compromised; insert-only. */
  bulletin_marking: {
    sequence: Int8;
    bulletin_id: string;
    kid: string;
    code: string;
    compromised_since: Timestamp;
    revoked_at: Timestamp;
    reason: string;
    audit_position: Int8;
    marked_at: Timestamp;
  };
  agency: {
    id: string;
    name: string;
    member_id: string | null;
    organisation: string | null;
    roles: ColumnType<string[], string[], string[]>;
    active: ColumnType<boolean, boolean | undefined, boolean>;
    record_sha256: Uint8Array;
    updated_at: Timestamp;
  };
  operator: { id: string; name: string; active: ColumnType<boolean, boolean | undefined, boolean>; record_sha256: Uint8Array; updated_at: Timestamp };
  ledger_head: { singleton: boolean; next_position: Int8; next_sequence: Int8; directory_version: ColumnType<bigint, bigint | number | undefined, bigint | number> };
  audit_event: {
    position: Int8;
    kind: number;
    hub_time: Timestamp;
    actor: string;
    bulletin_id: string | null;
    agency_id: string | null;
    code: string;
    leaf: Uint8Array;
    leaf_hash: Uint8Array;
  };
  bulletin: {
    sequence: Int8;
    id: string;
    issuer: string;
    jti: string;
    kid: string;
    jws: Uint8Array;
    jws_sha256: Uint8Array;
    category: string;
    tlp: string;
    hub_time: Timestamp;
    expires_at: Timestamp;
    audit_position: Int8;
    receipt: Uint8Array;
  };
  delivery_decision: {
    agency_id: string;
    sequence: Int8;
    decision: 'deliver' | 'deny';
    code: string;
    reason: string;
    policy_version: string;
    audit_position: Int8;
    acked_at: Timestamp | null;
    disclosed: ColumnType<number[] | null, number[] | null | undefined, never>;
    kb_jwt: string | null;
    sd_hash: Uint8Array | null;
    withheld: ColumnType<WithheldRow[], string | undefined, never>;
    agreements: ColumnType<string[], string[] | undefined, never>;
  };
  agreement_version: {
    agreement_id: string;
    version: number;
    record: ColumnType<Record<string, unknown>, string, never>;
    ended: boolean;
    end_reason: string | null;
    operator_id: string;
    statement: Uint8Array;
    recorded_at: Timestamp;
    audit_position: Int8;
  };
  audit_event_detail: {
    position: Int8;
    salt: Uint8Array | null;
    details: Uint8Array | null;
    purged_at: Timestamp | null;
  };
  bulletin_disclosure: {
    sequence: Int8;
    position: number;
    digest: string;
    path: string;
    kind: string;
    encoded: string | null;
  };
  agency_cursor: { agency_id: string; acked_through: Int8; updated_at: Timestamp };
  audit_tile: { level: number; index: Int8; hashes: Uint8Array };
  audit_checkpoint: { tree_size: Int8; root_hash: Uint8Array; note: string; signed_at: Timestamp };
  audit_cosignature: { tree_size: Int8; member_id: string; signature_line: string; cosigned_at: Timestamp };
  audit_state: { singleton: boolean; tree_size: Int8; frontier: Uint8Array[] };
  /** A follow-up (update, correction, withdrawal) of an earlier bulletin; insert-only (migration 0007). */
  bulletin_follow_up: {
    sequence: Int8;
    bulletin_id: string;
    supersedes_sequence: Int8;
    supersedes_id: string;
    root_sequence: Int8;
    action: 'update' | 'correction' | 'withdrawal';
    audit_position: Int8;
    recorded_at: Timestamp;
  };
  /** When each bulletin's retention ends, and its purge; only the purge may change a row, once. */
  bulletin_retention: {
    sequence: Int8;
    ends_at: Timestamp;
    basis: string;
    purged_at: NullableTimestamp;
    purge_position: ColumnType<bigint | null, bigint | number | null | undefined, bigint | number | null>;
  };
  /** What search finds a bulletin by: its clear claims only. */
  bulletin_search: {
    sequence: Int8;
    issuer: string;
    category: string;
    hub_time: Timestamp;
    states: ColumnType<string[], string[], never>;
    waypoint_states: ColumnType<string[], string[], never>;
    waypoint_places: ColumnType<string[], string[], never>;
    title: string;
    /** A tsvector, written and matched with raw SQL in the search store. */
    document: ColumnType<string, never, never>;
  };
  /** The text of each Disclosure, searched only where it was released; deleted when purged. */
  bulletin_disclosure_text: {
    sequence: Int8;
    position: number;
    document: ColumnType<string, never, never>;
  };
  /** Cooperation requests with their current state (migration 0006); only the state changes, forward. */
  cooperation_request: {
    id: string;
    seq: Generated<bigint>;
    requester: string;
    addressee: string;
    addressee_authority: string;
    requesting_agency: string | null;
    type: string;
    urgency: string;
    state: string;
    submitted_at: Timestamp;
    deadline_at: Timestamp;
    due_at: Timestamp;
    closed_at: NullableTimestamp;
    outcome: string | null;
    expires_at: Timestamp;
    audit_position: Int8;
  };
  /** Every transition of a request, beside its audit event; insert-only. */
  request_transition: {
    audit_position: Int8;
    request_id: string;
    from_state: string | null;
    to_state: string;
    actor: string;
    due_at: Timestamp;
    hub_time: Timestamp;
  };
  /** The signed document of a transition (request, answer, delay, withdrawal); insert-only. */
  request_document: {
    audit_position: Int8;
    request_id: string;
    kind: string;
    issuer: string;
    jti: string;
    kid: string;
    jws: Uint8Array;
    jws_sha256: Uint8Array;
    hub_time: Timestamp;
    expires_at: Timestamp;
  };
  /** A document's Disclosures, in submitted order; `encoded` is purgeable. */
  request_disclosure: {
    audit_position: Int8;
    position: number;
    digest: string;
    path: string;
    kind: string;
    encoded: string | null;
  };
  /** Each request document purged at its retention end, with the RETENTION_PURGE event (migration 0008); insert-only. */
  request_document_purge: {
    audit_position: Int8;
    request_id: string;
    ends_at: Timestamp;
    basis: string;
    purged_at: Timestamp;
    purge_position: Int8;
  };
  /** Each agency notified of a transition, with what it was presented; insert-only. */
  request_notice: {
    audit_position: Int8;
    agency_id: string;
    side: 'requester' | 'addressee';
    decision: 'deliver' | 'deny' | null;
    code: string;
    reason: string;
    policy_version: string;
    disclosed: number[] | null;
    kb_jwt: string | null;
    sd_hash: Uint8Array | null;
    withheld: ColumnType<WithheldRow[], string | undefined, never>;
    agreements: ColumnType<string[], string[] | undefined, never>;
    decision_position: ColumnType<bigint | null, bigint | null | undefined, never>;
  };
  kysely_migration?: { name: string; timestamp: string };
  _generated?: Generated<number>;
}

export interface WithheldRow {
  kind: string;
  reason: string;
}

export interface PublicJwkRow {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}
