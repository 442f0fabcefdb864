/** Kysely table types for the hub database. Migrations in `migrations.ts` are the source of truth. */
import type { ColumnType, Generated } from 'kysely';

type Int8 = ColumnType<bigint, bigint | number, bigint | number>;
type Timestamp = ColumnType<Date, Date, Date>;
type NullableTimestamp = ColumnType<Date | null, Date | null | undefined, Date | null>;

export interface HubDatabase {
  member: { id: string; name: string; active: ColumnType<boolean, boolean | undefined, boolean>; record_sha256: Uint8Array; updated_at: Timestamp };
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
  ledger_head: { singleton: boolean; next_position: Int8; next_sequence: Int8 };
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
