/**
 * The region registry in the hub: members, their signing keys, agencies and operators. Imported
 * from the region file at start-up (each addition or change is an audited event in the same
 * transaction), then held in memory as a read-only view for authentication and policy. Signing
 * keys are not in that view: they move while the hub runs (rotation, revocation), so the key
 * directory is read from the database (`key-store.ts`).
 */
import type { Kysely } from 'kysely';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import type { Clock } from '../core/clock.js';
import { asAgencyId, asMemberId, asOperatorId } from '../core/ids.js';
import type { AgencyId, MemberId, OperatorId } from '../core/ids.js';
import { importVerificationKey, jwkThumbprint } from '../core/jws.js';
import type { SigningAlgorithm } from '../core/jws.js';
import type { AgencyRecord, MemberRecord, OperatorRecord, Region } from '../core/region.js';
import { AGENCY_ROLES } from '../core/vocabulary.js';
import type { AgencyRole } from '../core/vocabulary.js';
import { CorridorError } from '../core/errors.js';
import type { HubDatabase } from './db/schema.js';
import { insertMemberKey, recordKeyChange, transitionKey } from './key-store.js';
import { inLedgerTransaction } from './ledger.js';

export interface RegistryView {
  readonly members: ReadonlyMap<MemberId, Omit<MemberRecord, 'signingKeys'>>;
  readonly agencies: ReadonlyMap<AgencyId, AgencyRecord>;
  readonly operators: ReadonlyMap<OperatorId, OperatorRecord>;
}

export interface ImportSummary {
  readonly changes: number;
  readonly keysAdded: number;
}

const HUB_ACTOR = 'hub';

/**
 * Brings the registry in line with the region file, in one audited transaction. Entries are
 * added, updated, or deactivated when the file no longer names them (never deleted: bulletins
 * and decisions refer to them); a deactivated member, agency or operator can no longer connect
 * or receive, and a key the file no longer lists is retired and verifies no new bulletin.
 */
export async function importRegion(db: Kysely<HubDatabase>, clock: Clock, region: Region, actor = HUB_ACTOR): Promise<ImportSummary> {
  return inLedgerTransaction(db, clock, async (ledger) => {
    const { trx, hubTime } = ledger;
    let changes = 0;
    let keysAdded = 0;
    const rows = async (table: 'member' | 'agency' | 'operator') =>
      new Map((await trx.selectFrom(table).select(['id', 'record_sha256', 'active']).execute()).map((r) => [r.id, r]));
    const existing = {
      member: await rows('member'),
      agency: await rows('agency'),
      operator: await rows('operator'),
      keys: new Map((await trx.selectFrom('member_key').select(['kid', 'member_id', 'status', 'source']).execute()).map((r) => [r.kid, r])),
    };
    const agencyMembers = new Map((await trx.selectFrom('agency').select(['id', 'member_id']).execute()).map((r) => [r.id, r.member_id ?? undefined]));
    const changed = (previous: { record_sha256: Uint8Array; active: boolean } | undefined, digest: Uint8Array): boolean =>
      previous === undefined || !previous.active || !Buffer.from(previous.record_sha256).equals(Buffer.from(digest));
    const record = async (
      kind: EventKind,
      objectId: string,
      digest: Uint8Array,
      code: 'REGISTRY_ADDED' | 'REGISTRY_UPDATED' | 'REGISTRY_DEACTIVATED' | 'KEY_ADDED' | 'KEY_RETIRED',
      reason: string,
      // The member state the event concerns, so that its monitor finds it.
      memberId: string | undefined,
    ): Promise<bigint> => {
      changes++;
      const [event] = await ledger.append([
        { kind, actor, objectId, objectDigest: digest, code, reason, operation: 'registry.import', ...(memberId === undefined ? {} : { memberId }) },
      ]);
      if (event === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return a position');
      return event.position;
    };
    const recordChange = async (objectId: string, digest: Uint8Array, added: boolean, memberId: string | undefined): Promise<void> => {
      await record(EventKind.REGISTRY_CHANGE, objectId, digest, added ? 'REGISTRY_ADDED' : 'REGISTRY_UPDATED', `${objectId} ${added ? 'added to' : 'updated in'} the region registry`, memberId);
    };

    const listedKeys = new Set<string>();
    for (const member of region.members) {
      // The central authority enters the digest only when designated, so records without one keep theirs.
      const authority = member.centralAuthority ?? null;
      const digest = recordDigest({ id: member.id, name: member.name, ...(authority === null ? {} : { centralAuthority: authority }) });
      const previous = existing.member.get(member.id);
      if (changed(previous, digest)) {
        await trx
          .insertInto('member')
          .values({ id: member.id, name: member.name, central_authority: authority, active: true, record_sha256: digest, updated_at: hubTime })
          .onConflict((oc) => oc.column('id').doUpdateSet({ name: member.name, central_authority: authority, active: true, record_sha256: digest, updated_at: hubTime }))
          .execute();
        await recordChange(`member:${member.id}`, digest, previous === undefined, member.id);
      }
      for (const jwk of member.signingKeys) {
        const kid = await jwkThumbprint(jwk);
        listedKeys.add(kid);
        const owner = existing.keys.get(kid);
        if (owner !== undefined) {
          if (owner.member_id !== member.id) throw new CorridorError('CONFIG_INVALID', `signing key ${kid} is already registered to member ${owner.member_id}`);
          // A retired, revoked or rejected key stays so: bringing a key back needs a new key. A
          // key that came by rotation is the directory's, whatever the file says of it.
          continue;
        }
        const alg: SigningAlgorithm = jwk.alg ?? 'Ed25519';
        await importVerificationKey(jwk, alg);
        const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
        const position = await record(EventKind.KEY_ADDED, kid, sha256(JSON.stringify(publicJwk)), 'KEY_ADDED', `signing key ${kid} (${alg}) added for member ${member.id}`, member.id);
        await insertMemberKey(trx, { kid, member: member.id, alg, jwk: publicJwk, at: hubTime, source: 'region' });
        await recordKeyChange(trx, { position, kid, member: member.id, from: undefined, to: 'active', actor, statement: undefined, at: hubTime });
        existing.keys.set(kid, { kid, member_id: member.id, status: 'active', source: 'region' });
        keysAdded++;
      }
    }
    for (const agency of region.agencies) {
      const fields = { id: agency.id, name: agency.name, member: agency.member ?? null, organisation: agency.organisation ?? null, roles: [...agency.roles].sort() };
      const digest = recordDigest(fields);
      const previous = existing.agency.get(agency.id);
      if (changed(previous, digest)) {
        const values = { name: agency.name, member_id: fields.member, organisation: fields.organisation, roles: fields.roles, active: true, record_sha256: digest, updated_at: hubTime };
        await trx
          .insertInto('agency')
          .values({ id: agency.id, ...values })
          .onConflict((oc) => oc.column('id').doUpdateSet(values))
          .execute();
        await recordChange(`agency:${agency.id}`, digest, previous === undefined, agency.member);
      }
    }
    for (const operator of region.operators) {
      const digest = recordDigest({ id: operator.id, name: operator.name });
      const previous = existing.operator.get(operator.id);
      if (changed(previous, digest)) {
        await trx
          .insertInto('operator')
          .values({ id: operator.id, name: operator.name, active: true, record_sha256: digest, updated_at: hubTime })
          .onConflict((oc) => oc.column('id').doUpdateSet({ name: operator.name, active: true, record_sha256: digest, updated_at: hubTime }))
          .execute();
        await recordChange(`operator:${operator.id}`, digest, previous === undefined, undefined);
      }
    }

    // What the file no longer names: deactivated, and keys retired, each an audited event.
    const listed = {
      member: new Set<string>(region.members.map((m) => m.id)),
      agency: new Set<string>(region.agencies.map((a) => a.id)),
      operator: new Set<string>(region.operators.map((o) => o.id)),
    };
    for (const table of ['member', 'agency', 'operator'] as const) {
      for (const row of existing[table].values()) {
        if (!row.active || listed[table].has(row.id)) continue;
        await trx.updateTable(table).set({ active: false, updated_at: hubTime }).where('id', '=', row.id).execute();
        const memberId = table === 'member' ? row.id : table === 'agency' ? agencyMembers.get(row.id) : undefined;
        await record(
          EventKind.REGISTRY_CHANGE,
          `${table}:${row.id}`,
          row.record_sha256,
          'REGISTRY_DEACTIVATED',
          `${table}:${row.id} is no longer in the region file; it can no longer connect or receive`,
          memberId,
        );
      }
    }
    // Only keys the file brought in are the file's to retire; a rotated key is the directory's.
    for (const key of existing.keys.values()) {
      if (key.status !== 'active' || key.source !== 'region' || listedKeys.has(key.kid)) continue;
      const member = asMemberId(key.member_id);
      const position = await record(
        EventKind.KEY_RETIRED,
        key.kid,
        sha256(key.kid),
        'KEY_RETIRED',
        `signing key ${key.kid} of member ${key.member_id} retired: the region file no longer lists it`,
        key.member_id,
      );
      await transitionKey(trx, key.kid, 'active', 'retired', { at: hubTime });
      await recordKeyChange(trx, { position, kid: key.kid, member, from: 'active', to: 'retired', actor, statement: undefined, at: hubTime });
    }
    return { changes, keysAdded };
  });
}

/** Reads the registry into an immutable in-memory view. */
export async function loadRegistry(db: Kysely<HubDatabase>): Promise<RegistryView> {
  const [members, agencies, operators] = await Promise.all([
    db.selectFrom('member').select(['id', 'name', 'central_authority']).where('active', '=', true).execute(),
    db.selectFrom('agency').select(['id', 'name', 'member_id', 'organisation', 'roles']).where('active', '=', true).execute(),
    db.selectFrom('operator').select(['id', 'name']).where('active', '=', true).execute(),
  ]);
  return {
    members: new Map(
      members.map((m) => [asMemberId(m.id), { id: asMemberId(m.id), name: m.name, centralAuthority: m.central_authority === null ? undefined : asAgencyId(m.central_authority) }]),
    ),
    agencies: new Map(
      agencies.map((a) => [
        asAgencyId(a.id),
        {
          id: asAgencyId(a.id),
          name: a.name,
          member: a.member_id === null ? undefined : asMemberId(a.member_id),
          organisation: a.organisation ?? undefined,
          roles: a.roles.filter((role): role is AgencyRole => (AGENCY_ROLES as readonly string[]).includes(role)),
        },
      ]),
    ),
    operators: new Map(operators.map((o) => [asOperatorId(o.id), { id: asOperatorId(o.id), name: o.name }])),
  };
}

/** SHA-256 over a canonical JSON rendering (keys sorted) of a registry record. */
function recordDigest(record: Record<string, unknown>): Uint8Array {
  const sorted = Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return sha256(JSON.stringify(sorted));
}
