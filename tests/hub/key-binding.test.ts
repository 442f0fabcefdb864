/**
 * The hub's Key Binding JWT of a delivery is made when the delivery is sent (src/hub/key-binding.ts),
 * not stored at publication: the decision rows hold what it signs (sd_hash, the agency, the
 * bulletin's sequence and hub time) and no KB-JWT; every path that hands out a delivery (the
 * stream's backlog and live fan-out, GetBulletin, search) sends the same bytes, which verify for
 * that agency and that delivery only; a KB-JWT a hub stored before migration 0012 is sent as stored.
 */
import { createHash } from 'node:crypto';
import { create, fromBinary } from '@bufbuild/protobuf';
import { AuditLeafSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/core/clock.js';
import { CorridorError } from '../../src/core/errors.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import type { AgencyId } from '../../src/core/ids.js';
import { importSigningKey, importVerificationKey } from '../../src/core/jws.js';
import type { SigningKey, VerificationKey } from '../../src/core/jws.js';
import { createKeyBindingJwt, parseSdJwt, verifyKeyBinding } from '../../src/core/sd-jwt.js';
import { ExchangeService, GetBulletinRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Delivery, SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { SearchBulletinsRequestSchema, SearchService } from '../../src/gen/corridor/v1/search_pb.js';
import { deliveryBinding } from '../../src/core/presentation.js';
import { keyBindingFor, liveKeyBinding } from '../../src/hub/key-binding.js';
import type { EmittedBulletin } from '../../src/hub/fanout.js';
import type { DeliveryGrant } from '../../src/hub/store.js';
import { hubReceiptKeyFile } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { freshSigningKey } from '../helpers/keys.js';
import { sqlOn } from '../helpers/database.js';
import { backlog, disclosuresOf, publish, routeClaims, routeContent } from '../helpers/follow-ups.js';
import { OPEN_AGREEMENT, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { memberKey } from '../helpers/bulletins.js';

const IDN = asMemberId('IDN');
const MYS_POLICE = asAgencyId('MYS:police');
const IDN_POLICE = asAgencyId('IDN:police');
const HUB_TIME = new Date(1_764_000_123_456);
const RELEASED = Buffer.from('eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln~WyJzYWx0IiwibmFtZSIsIngiXQ~', 'latin1');
const releaseOf = (released: Uint8Array) => ({ released, sdHash: createHash('sha256').update(released).digest('base64url') });

function verificationKeyOf(key: SigningKey): Promise<VerificationKey> {
  return importVerificationKey(key.publicJwk, key.alg);
}

async function verifyFor(presentation: Uint8Array, key: VerificationKey, agency: AgencyId, sequence: bigint) {
  const expected = deliveryBinding(agency, { sequence, hubTime: HUB_TIME });
  return verifyKeyBinding(presentation, key, { aud: expected.aud, nonce: expected.nonce, now: new Date(), maxAgeSeconds: 11 * 366 * 24 * 3600 });
}

async function refusal(promise: Promise<unknown>): Promise<CorridorError> {
  const error = await promise.then(
    () => undefined,
    (cause: unknown) => cause,
  );
  if (!(error instanceof CorridorError)) throw new Error(`expected a CorridorError, got ${String(error)}`);
  return error;
}

describe('keyBindingFor', () => {
  it('signs, for one agency and one delivery, exactly the KB-JWT the hub signed at publication before', async () => {
    const hubKey = await freshSigningKey();
    const release = releaseOf(RELEASED);
    const bulletin = { sequence: 4_321n, hubTime: HUB_TIME };
    const kbJwt = await keyBindingFor(hubKey, MYS_POLICE, bulletin, release);
    // What publish.ts signed before: the same claims, so the same bytes (Ed25519 is deterministic).
    const before = await createKeyBindingJwt(hubKey, { aud: 'urn:corridor:agency:MYS:police', nonce: 'MYS:police#4321', iat: epochSeconds(HUB_TIME), sdHash: release.sdHash });
    expect(Buffer.from(kbJwt).toString('latin1')).toBe(before);
    expect(Buffer.from(await keyBindingFor(hubKey, MYS_POLICE, bulletin, release)).equals(Buffer.from(kbJwt))).toBe(true);

    const presentation = Buffer.concat([RELEASED, kbJwt]);
    const claims = await verifyFor(presentation, await verificationKeyOf(hubKey), MYS_POLICE, 4_321n);
    expect(claims.iat).toBe(1_764_000_123);
  });

  it('binds to nothing else: another agency, another delivery, other released bytes or another key are refused', async () => {
    const hubKey = await freshSigningKey();
    const key = await verificationKeyOf(hubKey);
    const kbJwt = await keyBindingFor(hubKey, MYS_POLICE, { sequence: 7n, hubTime: HUB_TIME }, releaseOf(RELEASED));
    const presentation = Buffer.concat([RELEASED, kbJwt]);
    expect((await refusal(verifyFor(presentation, key, IDN_POLICE, 7n))).message).toMatch(/aud/);
    expect((await refusal(verifyFor(presentation, key, MYS_POLICE, 8n))).message).toMatch(/nonce/);
    const fewer = Buffer.from(`${RELEASED.toString('latin1').split('~')[0] ?? ''}~`, 'latin1');
    expect((await refusal(verifyFor(Buffer.concat([fewer, kbJwt]), key, MYS_POLICE, 7n))).message).toMatch(/sd_hash/);
    expect((await refusal(verifyFor(presentation, await verificationKeyOf(await freshSigningKey()), MYS_POLICE, 7n))).code).toMatch(/JWS_UNKNOWN_KEY|JWS_BAD_SIGNATURE/);
  });

  it('sends a KB-JWT stored before migration 0012 as it was stored, without signing', async () => {
    const stored = Buffer.from('stored.kb.jwt', 'latin1');
    const kbJwt = await keyBindingFor(await freshSigningKey(), MYS_POLICE, { sequence: 1n, hubTime: HUB_TIME }, { ...releaseOf(RELEASED), storedKbJwt: stored });
    expect(kbJwt).toBe(stored);
  });
});

describe('liveKeyBinding', () => {
  const THA_POLICE = asAgencyId('THA:police');
  const grantOf = (released: Uint8Array): DeliveryGrant => ({ reason: 'released', policyVersion: 'p1', release: releaseOf(released), withheld: [], agreements: [] });
  const liveBulletin = (recipients: ReadonlyMap<AgencyId, DeliveryGrant>): EmittedBulletin => ({
    bulletin: { sequence: 55n, id: 'b-55', issuer: 'IDN', jti: 'j', jws: new Uint8Array(), jwsSha256: new Uint8Array(32), hubTime: HUB_TIME, expiresAt: HUB_TIME, auditPosition: 9n, receipt: new Uint8Array() },
    recipients,
    frames: new Map(),
    keyBindings: { started: false, byAgency: new Map() },
  });

  it("signs every subscribed recipient's KB-JWT on the first call, each its own, holds one only for an agency's other subscriptions, and signs a late agency alone", async () => {
    const hubKey = await freshSigningKey();
    const key = await verificationKeyOf(hubKey);
    const other = Buffer.from('eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln~', 'latin1');
    const live = liveBulletin(new Map([[MYS_POLICE, grantOf(RELEASED)], [IDN_POLICE, grantOf(other)], [THA_POLICE, grantOf(RELEASED)]]));
    const subscribed = new Map([[IDN_POLICE as string, 2], [MYS_POLICE as string, 1], ['VNM:police', 1]]);
    const held = (): string[] => [...live.keyBindings.byAgency.keys()].sort();

    // IDN first: the pass also starts MYS's (subscribed); THA has no subscription, VNM is no recipient.
    const idn = liveKeyBinding(hubKey, live, IDN_POLICE, subscribed);
    expect(live.keyBindings.started).toBe(true);
    expect(held()).toEqual([IDN_POLICE, MYS_POLICE]);
    const mysStarted = live.keyBindings.byAgency.get(MYS_POLICE);
    // IDN's second subscription takes the same signature.
    expect(liveKeyBinding(hubKey, live, IDN_POLICE, subscribed)).toBe(idn);
    // MYS has one subscription: it takes the signature the pass started, and it is no longer held.
    const mys = liveKeyBinding(hubKey, live, MYS_POLICE, subscribed);
    expect(mys).toBe(mysStarted);
    expect(held()).toEqual([IDN_POLICE]);

    // Each is the KB-JWT of its own delivery: the bytes keyBindingFor makes, verifying for that agency only.
    expect(Buffer.from(await mys).equals(Buffer.from(await keyBindingFor(hubKey, MYS_POLICE, live.bulletin, releaseOf(RELEASED))))).toBe(true);
    await verifyFor(Buffer.concat([RELEASED, await mys]), key, MYS_POLICE, 55n);
    await verifyFor(Buffer.concat([other, await idn]), key, IDN_POLICE, 55n);
    expect((await refusal(verifyFor(Buffer.concat([RELEASED, await mys]), key, IDN_POLICE, 55n))).message).toMatch(/aud/);

    // THA, not in the pass: signed alone, no second pass (IDN's is the same promise), nothing more held.
    const tha = liveKeyBinding(hubKey, live, THA_POLICE, new Map([...subscribed, [THA_POLICE as string, 1]]));
    expect(live.keyBindings.byAgency.get(IDN_POLICE)).toBe(idn);
    expect(held()).toEqual([IDN_POLICE]);
    await verifyFor(Buffer.concat([RELEASED, await tha]), key, THA_POLICE, 55n);
  });

  it('refuses an agency the bulletin was not released to, and signs nothing for it', async () => {
    const hubKey = await freshSigningKey();
    const live = liveBulletin(new Map([[MYS_POLICE, grantOf(RELEASED)]]));
    await expect(liveKeyBinding(hubKey, live, IDN_POLICE, new Map([[IDN_POLICE as string, 1], [MYS_POLICE as string, 1]]))).rejects.toThrow(/not a recipient/);
    expect(live.keyBindings.started).toBe(false);
    expect(live.keyBindings.byAgency.size).toBe(0);
  });
});

describe('the Key Binding JWT of a delivery, at the hub', () => {
  let region: TestRegion;
  let hubKey: VerificationKey;
  let mys: HubConnection;
  let published: { bulletinId: string; sequence: bigint }[];

  beforeAll(async () => {
    // MYS receives IDN's bulletins without identity data, IDN's own agencies with it: two releases of one bulletin.
    region = await startTestRegion({ agreements: [{ ...OPEN_AGREEMENT, personal_data: ['conveyance'] }] });
    const signing = await importSigningKey(await readPrivateJwkFile(hubReceiptKeyFile(region.home)));
    hubKey = await verificationKeyOf(signing);
    const idnNode = await region.connect({ kind: 'member', id: IDN });
    const idnKey = await memberKey(region.home, IDN);
    mys = await region.connect({ kind: 'agency', id: MYS_POLICE });
    published = [];
    for (const title of ['Boats leaving Lhokseumawe', 'Departures from Kupang']) {
      const receipt = await publish(idnNode, idnKey, routeClaims(IDN, routeContent({ title, suspects: [{ role: 'organiser', name: 'Rizal Tanjung' }] })));
      published.push({ bulletinId: receipt.bulletinId, sequence: receipt.sequence });
    }
  });

  afterAll(async () => {
    await region?.close();
  });

  it('is not stored: each deliver decision keeps its sd_hash, the digest of exactly what it releases, which its audit event logs', async () => {
    const rows = await sqlOn<{ agency_id: string; kb_jwt: string | null; sd_hash: Buffer | null; leaf: Buffer }>(
      region.databaseUrl,
      `SELECT d.agency_id, d.kb_jwt, d.sd_hash, e.leaf FROM delivery_decision d JOIN audit_event e ON e.position = d.audit_position WHERE d.decision = 'deliver'`,
    );
    expect(rows.length).toBeGreaterThan(2);
    for (const row of rows) {
      expect(row.kb_jwt, row.agency_id).toBeNull();
      expect(row.sd_hash?.length, row.agency_id).toBe(32);
      expect(Buffer.from(fromBinary(AuditLeafSchema, row.leaf).objectDigest).equals(row.sd_hash ?? Buffer.alloc(0)), row.agency_id).toBe(true);
    }
    // A delivery without a SHA-256 sd_hash could not be bound: migration 0012 refuses such a row.
    for (const sdHash of ['NULL', "'\\x00'::bytea", 'sd_hash || sd_hash']) {
      await expect(
        sqlOn(region.databaseUrl, `UPDATE delivery_decision SET sd_hash = ${sdHash} WHERE decision = 'deliver' AND agency_id = $1`, [MYS_POLICE]),
        sdHash,
      ).rejects.toThrow(/delivery_decision_release_named/);
    }
  });

  it('is the same on the stream, from GetBulletin and from search, and verifies for that agency and delivery only', async () => {
    const delivered = await backlog(mys, MYS_POLICE);
    expect(delivered.map((d) => d.bulletinId)).toEqual(published.map((p) => p.bulletinId));
    const searched = await mys.search.unary(SearchService.method.searchBulletins, create(SearchBulletinsRequestSchema, {}));
    for (const delivery of delivered) {
      const fetched = await mys.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: delivery.bulletinId }));
      expect(Buffer.from(fetched.sdJwt).equals(Buffer.from(delivery.sdJwt)), delivery.bulletinId).toBe(true);
      const hit = searched.results.find((r) => r.bulletinId === delivery.bulletinId);
      expect(Buffer.from(hit?.sdJwt ?? []).equals(Buffer.from(delivery.sdJwt)), delivery.bulletinId).toBe(true);

      const hubTime = new Date(Number(delivery.receipt?.hubTimeMs ?? 0n));
      const expected = deliveryBinding(MYS_POLICE, { sequence: delivery.cursor, hubTime });
      const claims = await verifyKeyBinding(delivery.sdJwt, hubKey, { aud: expected.aud, nonce: expected.nonce, now: new Date(), maxAgeSeconds: 60 });
      expect(claims.iat).toBe(epochSeconds(hubTime));
      const other = delivered.find((d) => d.cursor !== delivery.cursor);
      await expect(verifyKeyBinding(delivery.sdJwt, hubKey, { aud: expected.aud, nonce: `MYS:police#${other?.cursor}`, now: new Date(), maxAgeSeconds: 60 })).rejects.toThrow(/nonce/);
      // Malaysia's police get no identity data; the KB-JWT binds exactly that.
      expect(disclosuresOf(delivery.sdJwt)).toHaveLength(0);
    }
  });

  it('on the live stream too, and a stored one from before migration 0012 is sent as stored', async () => {
    const latest = published.at(-1);
    if (latest === undefined) throw new Error('a bulletin expected');
    const idn = await region.connect({ kind: 'agency', id: IDN_POLICE });
    const [original] = await backlog(idn, IDN_POLICE);
    if (original === undefined) throw new Error('a delivery expected');
    expect(disclosuresOf(original.sdJwt)).toHaveLength(1);
    // As an earlier hub stored it: a valid KB-JWT of this delivery, but not the bytes the hub signs today (iat a second earlier).
    const parsed = parseSdJwt(original.sdJwt);
    const signing = await importSigningKey(await readPrivateJwkFile(hubReceiptKeyFile(region.home)));
    const binding = deliveryBinding(IDN_POLICE, { sequence: original.cursor, hubTime: new Date(Number(original.receipt?.hubTimeMs ?? 0n)) });
    const stored = await createKeyBindingJwt(signing, { ...binding, iat: binding.iat - 1, sdHash: createHash('sha256').update(parsed.sdHashInput).digest('base64url') });
    await sqlOn(region.databaseUrl, `UPDATE delivery_decision SET kb_jwt = $1 WHERE agency_id = $2 AND sequence = $3`, [stored, IDN_POLICE, original.cursor.toString()]);
    const [again] = await backlog(idn, IDN_POLICE);
    expect(Buffer.from(again?.sdJwt ?? []).toString('latin1')).toBe(`${parsed.sdHashInput}${stored}`);

    // Live: a new bulletin reaches the open stream with a KB-JWT for this delivery.
    const live = await liveDelivery(mys, MYS_POLICE, latest.sequence, async () => {
      const receipt = await publish(await region.connect({ kind: 'member', id: IDN }), await memberKey(region.home, IDN), routeClaims(IDN, routeContent({ title: 'Landings near Penang' })));
      return receipt.sequence;
    });
    const expected = deliveryBinding(MYS_POLICE, { sequence: live.cursor, hubTime: new Date(Number(live.receipt?.hubTimeMs ?? 0n)) });
    await verifyKeyBinding(live.sdJwt, hubKey, { aud: expected.aud, nonce: expected.nonce, now: new Date(), maxAgeSeconds: 60 });
  });
});

/** Opens a stream after `afterCursor`, runs `publishOne` once caught up and resolves with the delivery of the sequence it returns. */
async function liveDelivery(agency: HubConnection, agencyId: AgencyId, afterCursor: bigint, publishOne: () => Promise<bigint>): Promise<Delivery> {
  const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId, afterCursor, afterNotice: 2n ** 62n }));
  try {
    const deliveries: Delivery[] = [];
    let arrived: (() => void) | undefined;
    const caughtUp = new Promise<void>((resolve, reject) => {
      stream.on('data', (m: SubscribeResponse) => {
        if (m.event.case === 'caughtUp') resolve();
        if (m.event.case === 'delivery') {
          deliveries.push(m.event.value);
          arrived?.();
        }
      });
      stream.on('error', reject);
    });
    await caughtUp;
    const sequence = await publishOne();
    for (;;) {
      const found = deliveries.find((d) => d.cursor === sequence);
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => (arrived = resolve));
    }
  } finally {
    stream.cancel();
  }
}
