/**
 * A bulletin's lifecycle over real gRPC with mTLS: only the originator updates, corrects or
 * withdraws a bulletin; each follow-up reaches every agency that received what it supersedes
 * (even one today's policy would not release it to, without personal data then), marks the
 * original superseded or withdrawn in GetBulletin and on the stream, and is audited; a follow-up
 * by another member, of a superseded or a withdrawn bulletin, is refused and leaves nothing but
 * the refusal.
 */
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import type { SigningKey } from '../../src/core/jws.js';
import { AuditService, EventKind, ListEventsRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { BulletinState, ExchangeService, GetBulletinRequestSchema, LifecycleAction, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Delivery } from '../../src/gen/corridor/v1/exchange_pb.js';
import { grpc } from '../../src/infra/grpc.js';
import { changeAgreementAtHub } from '../../src/node/agreements.js';
import { followUpHeadline, statusNote, reportedStatus, withLifecycle, withdrawalDraftFor } from '../../src/node/follow-up.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { prepareBulletin } from '../../src/node/publisher.js';
import { memberKey, signBulletin } from '../helpers/bulletins.js';
import { backlog, disclosuresOf, followUpClaims, publish, routeClaims, routeContent, withdrawalClaims } from '../helpers/follow-ups.js';
import { expectLedgerReferencesIntact } from '../helpers/database.js';
import { OPEN_AGREEMENT, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const ORIGINAL_RECIPIENTS = ['AUS:border-force', 'IDN:immigration', 'IDN:police', 'MYS:coast-guard', 'MYS:police'];

let region: TestRegion;
let idnNode: HubConnection;
let mysNode: HubConnection;
let idnKey: SigningKey;
let mysKey: SigningKey;
const agencies = new Map<string, HubConnection>();

beforeAll(async () => {
  region = await startTestRegion();
  idnNode = await region.connect({ kind: 'member', id: IDN });
  mysNode = await region.connect({ kind: 'member', id: MYS });
  idnKey = await memberKey(region.home, IDN);
  mysKey = await memberKey(region.home, MYS);
  for (const id of [...ORIGINAL_RECIPIENTS, 'IOM:observer']) agencies.set(id, await region.connect({ kind: 'agency', id: asAgencyId(id) }));
});

afterAll(async () => {
  await region?.close();
});

function agency(id: string): HubConnection {
  const connection = agencies.get(id);
  if (connection === undefined) throw new Error(`no connection for ${id}`);
  return connection;
}

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: region.databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Who received a bulletin: the agencies whose backlog holds it, with the delivery each got. */
async function recipientsOf(bulletinId: string): Promise<Map<string, Delivery>> {
  const found = new Map<string, Delivery>();
  for (const [id, connection] of agencies) {
    const delivery = (await backlog(connection, id)).find((d) => d.bulletinId === bulletinId);
    if (delivery !== undefined) found.set(id, delivery);
  }
  return found;
}

async function events(bulletinId: string) {
  const auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
  return (await auditor.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { bulletinId, pageSize: 1000 }))).events;
}

async function refusalOf(bulletinId: string) {
  return (await events(bulletinId)).filter((e) => e.leaf?.kind === EventKind.REFUSE);
}

describe('a follow-up', () => {
  let original: { id: string; claims: Record<string, unknown> };
  let update: string;
  let correction: string;

  it('an update reaches every agency that received the original, even where today\'s handling would not release it, without personal data there', async () => {
    const claims = routeClaims(IDN, routeContent({ title: 'Boats leaving Lhokseumawe' }));
    original = { id: (await publish(idnNode, idnKey, claims)).bulletinId, claims };
    expect([...(await recipientsOf(original.id)).keys()].sort()).toEqual(ORIGINAL_RECIPIENTS);

    // The update narrows the handling to IDN and names a suspect: today's policy alone releases it to IDN's agencies only.
    const updateContent = routeContent({ title: 'Boats leaving Lhokseumawe: the organiser is known', suspects: [{ role: 'organiser', name: 'Rizal Tanjung' }] });
    const updateClaims = followUpClaims(
      routeClaims(IDN, updateContent, { handling: { tlp: 'AMBER', releasable_to: { members: ['IDN'], agencies: [] }, code: 'H2', personal_data: true } }),
      'update',
      original.id,
      'the organiser has been identified',
    );
    const receipt = await publish(idnNode, idnKey, updateClaims);
    update = receipt.bulletinId;

    const got = await recipientsOf(update);
    expect([...got.keys()].sort()).toEqual(ORIGINAL_RECIPIENTS);
    // IDN's own agencies receive it under the policy, with the suspect's name.
    expect(got.get('IDN:police')?.reason).not.toMatch(/follow-up reaches/);
    expect(disclosuresOf(got.get('IDN:police')?.sdJwt ?? new Uint8Array())).toHaveLength(1);
    // MYS and AUS receive it because they received the original: the clear claims, no Disclosure.
    for (const id of ['MYS:police', 'MYS:coast-guard', 'AUS:border-force']) {
      const delivery = got.get(id);
      expect(delivery?.reason, id).toMatch(/a follow-up reaches every agency that received/);
      expect(disclosuresOf(delivery?.sdJwt ?? new Uint8Array()), id).toHaveLength(0);
      expect(delivery?.withheld.map((w) => w.kind), id).toEqual(['identity']);
      expect(delivery?.status?.supersedes).toBe(original.id);
      expect(delivery?.status?.action).toBe(LifecycleAction.UPDATE);
      expect(delivery?.status?.state).toBe(BulletinState.ACTIVE);
    }
    expect(got.has('IOM:observer')).toBe(false);
    const decisions = await sql<{ agency_id: string; code: string }>(
      "SELECT agency_id, code FROM delivery_decision d JOIN bulletin b USING (sequence) WHERE b.id = $1 AND d.decision = 'deliver' ORDER BY agency_id",
      [update],
    );
    expect(decisions.filter((d) => d.code === 'RELEASED_TO_ORIGINAL_RECIPIENT').map((d) => d.agency_id)).toEqual(['AUS:border-force', 'MYS:coast-guard', 'MYS:police']);

    // The original is now shown as superseded, on the stream and by GetBulletin.
    const backlogDelivery = (await backlog(agency('MYS:police'), 'MYS:police')).find((d) => d.bulletinId === original.id);
    expect(backlogDelivery?.status?.state).toBe(BulletinState.SUPERSEDED);
    expect(backlogDelivery?.status?.latestBulletinId).toBe(update);
    const fetched = await agency('MYS:police').exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: original.id }));
    expect(fetched.status?.state).toBe(BulletinState.SUPERSEDED);
    expect(fetched.status?.latestAction).toBe(LifecycleAction.UPDATE);

    // Audited: a BULLETIN_SUPERSEDED event about the original, naming the update.
    const superseded = (await events(original.id)).filter((e) => e.leaf?.kind === EventKind.BULLETIN_SUPERSEDED);
    expect(superseded).toHaveLength(1);
    expect(superseded[0]?.leaf?.objectId).toBe(update);
    expect(superseded[0]?.leaf?.code).toBe('UPDATE');
    expect(superseded[0]?.leaf?.actor).toBe('member:IDN');
  });

  it('a correction follows the latest bulletin and reaches everyone the update reached; an earlier one can no longer be followed up', async () => {
    const content = routeContent({ title: 'Boats leaving Lhokseumawe, corrected', summary: 'Three vessels, not two.' });
    // A follow-up's batch, its thread record included, is one write and one head update: the
    // replicas are woken once.
    const listener = new pg.Client({ connectionString: region.databaseUrl });
    await listener.connect();
    const heard: string[] = [];
    let receipt: Awaited<ReturnType<typeof publish>>;
    try {
      listener.on('notification', (message) => heard.push(message.payload ?? ''));
      await listener.query('LISTEN corridor_ledger');
      receipt = await publish(idnNode, idnKey, followUpClaims(routeClaims(IDN, content), 'correction', update, 'three vessels'));
      await expect.poll(() => heard.length).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      await listener.end();
    }
    expect(heard).toHaveLength(1);
    correction = receipt.bulletinId;
    // Its thread event comes right after the batch's own (PUBLISH, then one per agency).
    const [thread] = await sql<{ audit_position: string; published: string; agencies: string }>(
      `SELECT f.audit_position, b.audit_position AS published, (SELECT count(*) FROM agency WHERE active) AS agencies
       FROM bulletin_follow_up f JOIN bulletin b ON b.sequence = f.sequence WHERE f.bulletin_id = $1`,
      [correction],
    );
    expect(BigInt(thread?.audit_position ?? -1)).toBe(BigInt(thread?.published ?? 0) + BigInt(thread?.agencies ?? 0) + 1n);
    expect([...(await recipientsOf(correction)).keys()].sort()).toEqual(ORIGINAL_RECIPIENTS);

    const fetched = await idnNode.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: original.id }));
    expect(fetched.status?.state).toBe(BulletinState.SUPERSEDED);
    expect(fetched.status?.latestBulletinId).toBe(correction);
    expect(fetched.status?.latestAction).toBe(LifecycleAction.CORRECTION);

    // The original (or the update) again: refused, naming the bulletin to follow up instead.
    const stale = followUpClaims(routeClaims(IDN, routeContent()), 'update', original.id);
    const error = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(idnKey, stale) })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining(`follow up ${correction} instead`) });
  });

  it('a withdrawal, made from its reason alone by the originator\'s node, reaches every recipient and marks the thread withdrawn; nothing follows it', async () => {
    // As `corridor node publish --supersedes ID --action withdrawal --reason …` makes it.
    const draft = await withdrawalDraftFor(idnNode, IDN, correction, 'the sighting was a fishing fleet', systemClock);
    const prepared = await prepareBulletin(draft, IDN, idnKey, systemClock);
    const published = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: prepared.jws }));
    const withdrawal = published.receipt?.bulletinId ?? '';

    const got = await recipientsOf(withdrawal);
    expect([...got.keys()].sort()).toEqual(ORIGINAL_RECIPIENTS);
    for (const delivery of got.values()) {
      expect(delivery.status?.state).toBe(BulletinState.WITHDRAWN);
      expect(delivery.status?.action).toBe(LifecycleAction.WITHDRAWAL);
      expect(delivery.status?.supersedes).toBe(correction);
      expect(disclosuresOf(delivery.sdJwt)).toHaveLength(0);
    }
    for (const id of [original.id, update, correction]) {
      const fetched = await agency('AUS:border-force').exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: id }));
      expect(fetched.status?.state, id).toBe(BulletinState.WITHDRAWN);
      expect(fetched.status?.latestBulletinId, id).toBe(withdrawal);
    }
    const withdrawn = (await events(correction)).filter((e) => e.leaf?.kind === EventKind.BULLETIN_WITHDRAWN);
    expect(withdrawn.map((e) => [e.leaf?.objectId, e.leaf?.code])).toEqual([[withdrawal, 'WITHDRAWN']]);
    expect(withdrawn[0]?.details?.reason).toContain('the sighting was a fishing fleet');

    // What `corridor node subscribe` prints: the withdrawal as such, and the original, delivered again, as withdrawn.
    expect(followUpHeadline({ lifecycle: { action: 'withdrawal', supersedes: correction, reason: 'the sighting was a fishing fleet' } })).toBe(
      `WITHDRAWN ${correction}: the sighting was a fishing fleet`,
    );
    expect(statusNote(reportedStatus(got.get('MYS:police')?.status))).toBe('');
    const again = (await backlog(agency('MYS:police'), 'MYS:police')).find((d) => d.bulletinId === original.id);
    expect(statusNote(reportedStatus(again?.status))).toBe(`  [WITHDRAWN by ${withdrawal}: do not rely on it]`);

    // Nothing follows a withdrawal: neither of the withdrawal nor of anything before it.
    for (const target of [withdrawal, correction, original.id]) {
      const claims = followUpClaims(routeClaims(IDN, routeContent()), 'update', target);
      const error = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(idnKey, claims) })).catch((e: unknown) => e);
      expect(error, target).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('withdrawn') });
      const refused = await refusalOf(`IDN:${String(claims['jti'])}`);
      expect(refused.map((e) => e.leaf?.code), target).toEqual(['BULLETIN_WITHDRAWN']);
      expect(await sql('SELECT 1 FROM bulletin WHERE id = $1', [`IDN:${String(claims['jti'])}`])).toHaveLength(0);
    }
  });

  it('by another member is refused PERMISSION_DENIED, and leaves nothing but the refusal', async () => {
    const before = await sql<{ n: string }>('SELECT (SELECT count(*) FROM bulletin) + (SELECT count(*) FROM bulletin_follow_up) + (SELECT count(*) FROM delivery_decision) AS n');
    const target = routeClaims(IDN, routeContent());
    const victim = (await publish(idnNode, idnKey, target)).bulletinId;
    const afterVictim = await sql<{ n: string }>('SELECT (SELECT count(*) FROM bulletin) + (SELECT count(*) FROM bulletin_follow_up) + (SELECT count(*) FROM delivery_decision) AS n');

    for (const action of ['update', 'correction'] as const) {
      const claims = followUpClaims(routeClaims(MYS, routeContent({ states: ['MYS', 'IDN'] })), action, victim);
      const error = await mysNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(mysKey, claims) })).catch((e: unknown) => e);
      expect(error, action).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining('only its originator') });
      expect((await refusalOf(`MYS:${String(claims['jti'])}`)).map((e) => e.leaf?.code)).toEqual(['NOT_ORIGINATOR']);
    }
    const withdrawal = withdrawalClaims(MYS, victim, target, 'not ours to withdraw');
    const error = await mysNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(mysKey, withdrawal) })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // Nor can another member's node even make the draft.
    await expect(withdrawalDraftFor(mysNode, MYS, victim, 'no', systemClock)).rejects.toMatchObject({ code: 'NOT_ORIGINATOR' });

    const after = await sql<{ n: string }>('SELECT (SELECT count(*) FROM bulletin) + (SELECT count(*) FROM bulletin_follow_up) + (SELECT count(*) FROM delivery_decision) AS n');
    expect(BigInt(after[0]?.n ?? '0')).toBe(BigInt(afterVictim[0]?.n ?? '0'));
    expect(BigInt(afterVictim[0]?.n ?? '0')).toBeGreaterThan(BigInt(before[0]?.n ?? '0'));
    const fetched = await agency('MYS:police').exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: victim }));
    expect(fetched.status?.state).toBe(BulletinState.ACTIVE);
  });

  it('of a bulletin that does not exist is NOT_FOUND; an update draft is made with --supersedes as a node makes it', async () => {
    const claims = followUpClaims(routeClaims(IDN, routeContent()), 'update', 'IDN:AAAAAAAAAAAAAAAAAAAAAA');
    await expect(idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(idnKey, claims) }))).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });

    const target = (await publish(idnNode, idnKey, routeClaims(IDN, routeContent()))).bulletinId;
    const base = routeClaims(IDN, routeContent({ title: 'Updated' }));
    const draft = Buffer.from(JSON.stringify({ category: base['category'], handling: base['handling'], content: base['content'] }));
    const prepared = await prepareBulletin(withLifecycle(draft, { action: 'update', supersedes: target }), IDN, idnKey, systemClock);
    const response = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: prepared.jws }));
    const fetched = await idnNode.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: target }));
    expect(fetched.status?.latestBulletinId).toBe(response.receipt?.bulletinId);
    // A draft naming another member's bulletin is refused by the node before signing.
    await expect(prepareBulletin(withLifecycle(draft, { action: 'update', supersedes: 'MYS:AAAAAAAAAAAAAAAAAAAAAA' }), IDN, idnKey, systemClock)).rejects.toMatchObject({
      code: 'NOT_ORIGINATOR',
    });
  });

  it('a withdrawal reaches every agency that received the original even after the agreement it was released under has ended', async () => {
    const claims = routeClaims(IDN, routeContent({ title: 'Last bulletin under the open agreement' }));
    const target = (await publish(idnNode, idnKey, claims)).bulletinId;
    const operator = region.region.operators[0];
    if (operator === undefined) throw new Error('no operator');
    await changeAgreementAtHub(
      await region.connect({ kind: 'operator', id: asOperatorId(operator.id) }),
      { id: asOperatorId(operator.id), tls: await region.tls({ kind: 'operator', id: operator.id }) },
      { action: 'end', agreementId: OPEN_AGREEMENT.id, reason: 'test: the arrangement ends' },
      systemClock,
    );
    // Today nothing of IDN's reaches MYS or AUS...
    const plain = (await publish(idnNode, idnKey, routeClaims(IDN, routeContent()))).bulletinId;
    expect([...(await recipientsOf(plain)).keys()].sort()).toEqual(['IDN:immigration', 'IDN:police']);
    // ...but the withdrawal does.
    const withdrawal = (await publish(idnNode, idnKey, withdrawalClaims(IDN, target, claims, 'superseded by events'))).bulletinId;
    const got = await recipientsOf(withdrawal);
    expect([...got.keys()].sort()).toEqual(ORIGINAL_RECIPIENTS);
    expect(got.get('MYS:police')?.reason).toMatch(/a follow-up reaches every agency that received/);
    expect(got.get('MYS:police')?.agreements).toEqual([]);
  });
});

describe('the ledger after follow-ups', () => {
  // A follow-up's batch writes the bulletin (audit events staged, then written with it) and then
  // appends its thread event: the head must end just past both.
  it('keeps its references, and its head just past the last position and sequence written', async () => {
    await expectLedgerReferencesIntact(region.databaseUrl);
  });
});
