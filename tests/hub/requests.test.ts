/**
 * Cooperation requests at the hub, over real gRPC with mTLS, real PostgreSQL and the members'
 * real keys: a request is submitted, delayed and answered, each step a signed document, a state
 * the hub tracks, an audit event and a notice to both sides (its document presented under the
 * access policy and verified by the recipient); a request past its due time is recorded overdue
 * once, even by two hubs at once; every refusal has its status and code and stores nothing but
 * its REFUSE event.
 */
import { randomBytes } from 'node:crypto';
import { create, fromBinary, isMessage } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/core/clock.js';
import type { Clock } from '../../src/core/clock.js';
import { ANSWER_TYP, REQUEST_TYP, requestId } from '../../src/core/cooperation-request.js';
import { CorridorError } from '../../src/core/errors.js';
import { asAgencyId, asMemberId, asOperatorId, memberUri } from '../../src/core/ids.js';
import type { AgencyId, MemberId } from '../../src/core/ids.js';
import type { SigningKey } from '../../src/core/jws.js';
import { issueSdJwt } from '../../src/core/sd-jwt.js';
import { AuditLeafSchema, EventKind } from '../../src/gen/corridor/v1/audit_pb.js';
import { ExchangeService, SubscribeRequestSchema, SubscribeResponseSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import {
  RequestService,
  RequestServiceGetRequestSchema,
  RequestServiceListRequestSchema,
  RequestServiceSubmitRequestSchema,
  RequestSide,
  RequestState,
} from '../../src/gen/corridor/v1/request_pb.js';
import type { CooperationRequest, RequestNotice } from '../../src/gen/corridor/v1/request_pb.js';
import { parseHubConfig } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import type { RunningHub } from '../../src/hub/hub.js';
import { freePort } from '../../src/infra/database.js';
import { errorCodeOf, grpc } from '../../src/infra/grpc.js';
import { createLogger } from '../../src/infra/log.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { sendDocument, signAnswer, signDelay, signRequest, signWithdrawal, verifyNoticeDocument } from '../../src/node/requests.js';
import { createTrustStore, hubKeyDirectory, memoryPins } from '../../src/node/trust.js';
import { memberKey } from '../helpers/bulletins.js';
import { sqlOn } from '../helpers/database.js';
import { OPEN_AGREEMENT, TEST_REGION, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const AUS = asMemberId('AUS');
const IDN_POLICE = asAgencyId('IDN:police');
const IDN_IMMIGRATION = asAgencyId('IDN:immigration');
const MYS_POLICE = asAgencyId('MYS:police');
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const silent = createLogger({ name: 'test', level: 'silent' });

/** Hub time that tests move forward; signers use it too, so `iat` stays in the hub's window. */
class TestClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

const DRAFT = {
  requesting_agency: 'IDN:immigration',
  content: {
    title: 'Verify Malaysian passport presented at Tanjung Priok',
    text: 'A passenger disembarking from a ferry presented the passport below; the photo page shows signs of substitution. Please confirm whether it was issued as described.',
    persons: [{ name: 'Ahmad bin Yusof', nationality: 'MYS', date_of_birth: '1988-04-12' }],
    documents: [{ type: 'passport', number: 'A51234567', issuing_state: 'MYS', holder_name: 'Ahmad bin Yusof' }],
  },
};

const ANSWER = {
  content: {
    title: 'Passport A51234567 was not issued to the holder',
    text: 'The number belongs to a passport reported stolen in 2024; the person named is not known to the Immigration Department.',
    persons: [{ name: 'Ahmad bin Yusof', nationality: 'MYS' }],
    documents: [{ type: 'passport', number: 'A51234567', issuing_state: 'MYS' }],
  },
};

async function failure(call: Promise<unknown>): Promise<{ status: number; code: string | undefined; details: string }> {
  let error: unknown = await call.then(
    () => undefined,
    (cause: unknown) => cause,
  );
  if (error instanceof CorridorError) error = error.cause;
  if (typeof error !== 'object' || error === null || !('code' in error) || typeof error.code !== 'number') throw new Error(`expected a gRPC error, got ${String(error)}`);
  const details = 'details' in error && typeof error.details === 'string' ? error.details : '';
  return { status: error.code, code: errorCodeOf(error), details };
}

interface Snapshot {
  requests: unknown;
  transitions: number;
  documents: number;
  disclosures: number;
  notices: number;
  events: number;
}

/** The request tables and the audit log, to check that a refusal stored nothing but its record. */
async function snapshot(region: TestRegion): Promise<Snapshot> {
  const [row] = await sqlOn<{ requests: unknown; transitions: string; documents: string; disclosures: string; notices: string; events: string }>(
    region.databaseUrl,
    `SELECT (SELECT json_agg(r ORDER BY id) FROM (SELECT id, state, due_at, closed_at, outcome, audit_position FROM cooperation_request) r) AS requests,
            (SELECT count(*) FROM request_transition) AS transitions, (SELECT count(*) FROM request_document) AS documents,
            (SELECT count(*) FROM request_disclosure) AS disclosures, (SELECT count(*) FROM request_notice) AS notices,
            (SELECT count(*) FROM audit_event) AS events`,
  );
  return {
    requests: row?.requests,
    transitions: Number(row?.transitions),
    documents: Number(row?.documents),
    disclosures: Number(row?.disclosures),
    notices: Number(row?.notices),
    events: Number(row?.events),
  };
}

async function expectRefused(region: TestRegion, call: () => Promise<unknown>, expected: { status: grpc.status; code: string; message: RegExp; actor: string; bulletinId?: string }): Promise<void> {
  const before = await snapshot(region);
  const error = await failure(call());
  expect(error).toMatchObject({ status: expected.status, code: expected.code });
  expect(error.details).toMatch(expected.message);
  expect(await snapshot(region)).toEqual({ ...before, events: before.events + 1 });
  const [last] = await sqlOn<{ leaf: Buffer }>(region.databaseUrl, 'SELECT leaf FROM audit_event ORDER BY position DESC LIMIT 1');
  const event = fromBinary(AuditLeafSchema, new Uint8Array(last?.leaf ?? []));
  expect(event).toMatchObject({ kind: EventKind.REFUSE, code: expected.code, actor: expected.actor, ...(expected.bulletinId === undefined ? {} : { bulletinId: expected.bulletinId }) });
}

/** The audit events about a request, in order. */
async function eventsOf(region: TestRegion, id: string) {
  const rows = await sqlOn<{ position: string; leaf: Buffer }>(region.databaseUrl, 'SELECT position, leaf FROM audit_event WHERE bulletin_id = $1 ORDER BY position', [id]);
  return rows.map((row) => ({ position: BigInt(row.position), ...fromBinary(AuditLeafSchema, new Uint8Array(row.leaf)) }));
}

/** Every request notice of an agency after `afterNotice`: the stream sends them before caught_up. */
async function noticesOf(connection: HubConnection, agency: AgencyId, afterNotice = 0n): Promise<RequestNotice[]> {
  const stream = connection.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: agency, afterNotice }));
  const notices: RequestNotice[] = [];
  try {
    for await (const message of stream) {
      if (!isMessage(message, SubscribeResponseSchema)) throw new Error('not a SubscribeResponse');
      if (message.event.case === 'requestNotice') notices.push(message.event.value);
      if (message.event.case === 'caughtUp') break;
    }
  } finally {
    stream.cancel();
  }
  return notices;
}

async function getRequest(connection: HubConnection, id: string) {
  return connection.requests.unary(RequestService.method.get, create(RequestServiceGetRequestSchema, { requestId: id }));
}

async function listRequests(connection: HubConnection, query: Parameters<typeof create<typeof RequestServiceListRequestSchema>>[1] = {}): Promise<CooperationRequest[]> {
  return (await connection.requests.unary(RequestService.method.list, create(RequestServiceListRequestSchema, query))).requests;
}

describe('cooperation requests', () => {
  const clock = new TestClock();
  let region: TestRegion;
  let idn: HubConnection;
  let mys: HubConnection;
  let aus: HubConnection;
  let operator: HubConnection;
  const keys = new Map<MemberId, SigningKey>();
  const key = (member: MemberId): SigningKey => keys.get(member) ?? (() => { throw new Error(`no key for ${member}`); })();

  beforeAll(async () => {
    // The periodic check stays out of the way: these tests run it when they mean to.
    region = await startTestRegion({ clock, requests: { overdueCheckIntervalMs: 3_600_000 } });
    idn = await region.connect({ kind: 'member', id: IDN });
    mys = await region.connect({ kind: 'member', id: MYS });
    aus = await region.connect({ kind: 'member', id: AUS });
    operator = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
    for (const member of [IDN, MYS, AUS]) keys.set(member, await memberKey(region.home, member));
  });
  afterAll(async () => {
    await region?.close();
  });

  const submit = async (urgency: 'urgent' | 'high' | 'normal' = 'high', draft: unknown = DRAFT, to: MemberId = MYS) => {
    const signed = await signRequest(key(IDN), IDN, draft, { to, type: 'travel-document-verification', urgency }, clock);
    return { signed, answer: await sendDocument(idn, 'request', signed.sdJwt) };
  };

  it('goes open → delayed → answered; each step signed, recorded, audited and noticed to both sides under the policy', async () => {
    const { signed, answer: submitted } = await submit('high');
    const id = signed.requestId;
    const request = submitted.request;
    expect(request).toMatchObject({ id, requester: IDN, addressee: MYS, addresseeAuthority: MYS_POLICE, requestingAgency: IDN_IMMIGRATION, type: 'travel-document-verification', urgency: 'high', state: RequestState.OPEN, overdue: false });
    expect(request.deadlineMs - request.submittedMs).toBe(BigInt(3 * DAY));
    expect(request.dueMs).toBe(request.deadlineMs);
    // The exact bytes again: the request as recorded, nothing new.
    const events = (await snapshot(region)).events;
    expect(await sendDocument(idn, 'request', signed.sdJwt)).toMatchObject({ replayed: true, request: { id, state: RequestState.OPEN } });
    expect((await snapshot(region)).events).toBe(events);

    const expectedBy = new Date(clock.now().getTime() + 5 * DAY);
    const delayed = await sendDocument(mys, 'reply', (await signDelay(key(MYS), MYS, id, 'The passport registry is being migrated; records from 2019 are not searchable until the 5th.', expectedBy, clock)).sdJwt);
    expect(delayed.request).toMatchObject({ state: RequestState.DELAYED, dueMs: BigInt(epochSeconds(expectedBy) * 1000), deadlineMs: request.deadlineMs });

    const answered = await sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, id, 'not-confirmed', ANSWER, clock)).sdJwt);
    expect(answered.request).toMatchObject({ state: RequestState.ANSWERED, outcome: 'not-confirmed', overdue: false });
    expect(answered.request.closedMs).toBeGreaterThan(0n);

    // Every transition is an event naming the request and the addressee, beside its deliveries.
    const audit = await eventsOf(region, id);
    const transitions = audit.filter((e) => e.kind !== EventKind.DELIVER && e.kind !== EventKind.DENY);
    expect(transitions.map((e) => [e.kind, e.actor, e.memberId, e.code])).toEqual([
      [EventKind.REQUEST_SUBMITTED, 'member:IDN', MYS, 'SUBMITTED'],
      [EventKind.REQUEST_DELAYED, 'member:MYS', MYS, 'DELAYED'],
      [EventKind.REQUEST_ANSWERED, 'member:MYS', MYS, 'ANSWERED'],
    ]);
    // Each document reached all three agencies of the two sides, each delivery an event with its sd_hash.
    const deliveries = audit.filter((e) => e.kind === EventKind.DELIVER);
    expect(deliveries.map((e) => e.agencyId).sort()).toEqual([IDN_IMMIGRATION, IDN_IMMIGRATION, IDN_IMMIGRATION, IDN_POLICE, IDN_POLICE, IDN_POLICE, MYS_POLICE, MYS_POLICE, MYS_POLICE].sort());

    // Both sides are notified, and verify each document themselves.
    const trust = createTrustStore({ pins: memoryPins(), directory: hubKeyDirectory(idn), clock, log: silent });
    for (const [agency, side] of [[MYS_POLICE, RequestSide.ADDRESSEE], [IDN_POLICE, RequestSide.REQUESTER], [IDN_IMMIGRATION, RequestSide.REQUESTER]] as const) {
      const connection = await region.connect({ kind: 'agency', id: agency });
      const notices = (await noticesOf(connection, agency)).filter((n) => n.request?.id === id);
      expect(notices.map((n) => [n.state, n.side])).toEqual([
        [RequestState.OPEN, side],
        [RequestState.DELAYED, side],
        [RequestState.ANSWERED, side],
      ]);
      const documents = await Promise.all(notices.map((n) => verifyNoticeDocument(trust, agency, n, clock.now())));
      expect(documents.map((d) => d?.claims.kind)).toEqual(['request', 'delay', 'answer']);
      const [asked, , answer] = documents;
      if (asked?.claims.kind !== 'request' || answer?.claims.kind !== 'answer') throw new Error('unexpected documents');
      // The test region's open agreement shares every kind: the persons and documents are disclosed.
      expect(asked.claims.content.documents).toEqual([{ type: 'passport', number: 'A51234567', issuing_state: 'MYS', holder_name: 'Ahmad bin Yusof' }]);
      expect(answer.claims).toMatchObject({ issuer: MYS, request: id, outcome: 'not-confirmed' });
      expect(answer.claims.content.persons).toHaveLength(1);
      // A notice is bound to its agency: another agency cannot pass it off as its own.
      if (agency !== MYS_POLICE) {
        const error = await verifyNoticeDocument(trust, MYS_POLICE, notices[2] ?? notices[0]!, clock.now()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CorridorError);
      }
    }

    // Each party sees the course and its documents; its own complete, the other's without Disclosures.
    const view = await getRequest(idn, id);
    expect(view.transitions.map((t) => [t.state, t.actor])).toEqual([
      [RequestState.OPEN, 'member:IDN'],
      [RequestState.DELAYED, 'member:MYS'],
      [RequestState.ANSWERED, 'member:MYS'],
    ]);
    expect(view.documents.map((d) => [d.kind, d.issuer])).toEqual([
      ['request', IDN],
      ['delay', MYS],
      ['answer', MYS],
    ]);
    expect(Buffer.from(view.documents[0]?.sdJwt ?? []).equals(Buffer.from(signed.sdJwt))).toBe(true);
    expect(Buffer.from(view.documents[2]?.sdJwt ?? []).toString('latin1')).toMatch(/^[^~]+~$/);
    // An operator sees the course, never the content; a third state nothing.
    const operatorView = await getRequest(operator, id);
    expect(operatorView.transitions).toHaveLength(3);
    expect(operatorView.documents).toHaveLength(0);
    expect(await failure(getRequest(aus, id))).toMatchObject({ status: grpc.status.NOT_FOUND, code: 'NOT_FOUND' });
    expect((await listRequests(aus)).map((r) => r.id)).not.toContain(id);
    expect((await listRequests(mys, { side: RequestSide.ADDRESSEE })).map((r) => r.id)).toContain(id);
    expect((await listRequests(mys, { side: RequestSide.REQUESTER })).map((r) => r.id)).not.toContain(id);
    expect((await listRequests(operator, { states: [RequestState.ANSWERED] })).map((r) => r.id)).toContain(id);
  });

  it('records a request overdue once its deadline passes, tells both sides, and still takes a late answer', async () => {
    const { signed } = await submit('urgent');
    const id = signed.requestId;
    expect(await region.hub()?.checkOverdue()).toBe(0);
    clock.offsetMs += 8 * HOUR + 1000;
    try {
      // Past due: listed as overdue before the check has run, then recorded once.
      expect((await listRequests(idn, { overdue: true })).map((r) => [r.id, r.overdue, r.state])).toContainEqual([id, true, RequestState.OPEN]);
      expect(await region.hub()?.checkOverdue()).toBe(1);
      expect(await region.hub()?.checkOverdue()).toBe(0);
      const overdue = (await getRequest(idn, id)).request;
      expect(overdue).toMatchObject({ state: RequestState.OVERDUE, overdue: true });
      const [event] = (await eventsOf(region, id)).filter((e) => e.kind === EventKind.REQUEST_OVERDUE);
      expect(event).toMatchObject({ actor: 'hub', memberId: MYS, code: 'OVERDUE' });
      for (const agency of [MYS_POLICE, IDN_POLICE, IDN_IMMIGRATION]) {
        const notices = (await noticesOf(await region.connect({ kind: 'agency', id: agency }), agency)).filter((n) => n.request?.id === id);
        expect(notices.map((n) => n.state)).toEqual([RequestState.OPEN, RequestState.OVERDUE]);
        expect(notices[1]?.sdJwt.byteLength).toBe(0);
        expect(notices[1]?.reason).toMatch(/^no answer from MYS by /);
        expect(notices[1]?.dueMs).toBe(overdue?.dueMs);
      }
      expect((await listRequests(operator, { overdue: true })).map((r) => r.id)).toContain(id);

      // A delay notice gives a new date; past it, the request is overdue again.
      await sendDocument(mys, 'reply', (await signDelay(key(MYS), MYS, id, 'Awaiting the issuing office.', new Date(clock.now().getTime() + 2 * HOUR), clock)).sdJwt);
      expect((await getRequest(idn, id)).request).toMatchObject({ state: RequestState.DELAYED, overdue: false });
      clock.offsetMs += 2 * HOUR + 1000;
      expect(await region.hub()?.checkOverdue()).toBe(1);
      // Late is better than never: the answer closes it, and its record says it was late.
      const late = await sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, id, 'confirmed', ANSWER, clock)).sdJwt);
      expect(late.request).toMatchObject({ state: RequestState.ANSWERED, overdue: false });
      expect((await listRequests(idn, { overdue: true })).map((r) => r.id)).not.toContain(id);
      const kinds = (await eventsOf(region, id)).filter((e) => e.kind !== EventKind.DELIVER).map((e) => e.kind);
      expect(kinds).toEqual([EventKind.REQUEST_SUBMITTED, EventKind.REQUEST_OVERDUE, EventKind.REQUEST_DELAYED, EventKind.REQUEST_OVERDUE, EventKind.REQUEST_ANSWERED]);
    } finally {
      // Later tests sign with this clock too; it keeps running ahead, which the hub accepts.
    }
  });

  it('is recorded overdue exactly once when two hubs check at the same time, and by the periodic check alone', async () => {
    const due = await Promise.all([submit('urgent'), submit('urgent'), submit('urgent')]);
    clock.offsetMs += 8 * HOUR + 1000;
    const port = await freePort();
    const second: RunningHub = await startHub(
      parseHubConfig({ home: region.home, listen: `127.0.0.1:${port}`, metricsListen: 'off', databaseUrl: region.databaseUrl, logLevel: 'silent', requests: { overdueCheckIntervalMs: 3_600_000 } }),
      silent,
      clock,
    );
    try {
      const [a, b] = await Promise.all([region.hub()?.checkOverdue(), second.checkOverdue()]);
      expect((a ?? 0) + (b ?? 0)).toBe(3);
      for (const { signed } of due) {
        expect((await eventsOf(region, signed.requestId)).filter((e) => e.kind === EventKind.REQUEST_OVERDUE)).toHaveLength(1);
      }
    } finally {
      await second.close();
    }

    // A hub with a short period records it by itself.
    const { signed } = await submit('urgent');
    clock.offsetMs += 8 * HOUR + 1000;
    const periodic = await startHub(
      parseHubConfig({ home: region.home, listen: `127.0.0.1:${await freePort()}`, metricsListen: 'off', databaseUrl: region.databaseUrl, logLevel: 'silent', requests: { overdueCheckIntervalMs: 50 } }),
      silent,
      clock,
    );
    try {
      const deadline = Date.now() + 10_000;
      while ((await getRequest(idn, signed.requestId)).request?.state !== RequestState.OVERDUE && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await getRequest(idn, signed.requestId)).request?.state).toBe(RequestState.OVERDUE);
    } finally {
      await periodic.close();
    }
    expect((await eventsOf(region, signed.requestId)).filter((e) => e.kind === EventKind.REQUEST_OVERDUE)).toHaveLength(1);
  });

  it('notifies live subscribers of a transition as it commits', async () => {
    const connection = await region.connect({ kind: 'agency', id: MYS_POLICE });
    const after = (await noticesOf(connection, MYS_POLICE)).reduce((max, n) => (n.auditPosition > max ? n.auditPosition : max), 0n);
    const stream = connection.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: MYS_POLICE, afterNotice: after }));
    try {
      const received = (async () => {
        let caughtUp = false;
        for await (const message of stream) {
          if (!isMessage(message, SubscribeResponseSchema)) continue;
          if (message.event.case === 'caughtUp') caughtUp = true;
          if (message.event.case === 'requestNotice') return { caughtUp, notice: message.event.value };
        }
        throw new Error('the stream ended');
      })();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const { signed } = await submit('normal');
      const { caughtUp, notice } = await received;
      expect(caughtUp).toBe(true);
      expect(notice).toMatchObject({ state: RequestState.OPEN, side: RequestSide.ADDRESSEE, request: { id: signed.requestId, urgency: 'normal' } });
    } finally {
      stream.cancel();
    }
  });

  describe('refusals: a status, a REFUSE event, nothing else stored', () => {
    it('a reply from a state the request is not addressed to, and a withdrawal by another than the requester', async () => {
      const { signed } = await submit('normal');
      const id = signed.requestId;
      await expectRefused(region, async () => sendDocument(aus, 'reply', (await signAnswer(key(AUS), AUS, id, 'confirmed', ANSWER, clock)).sdJwt), {
        status: grpc.status.PERMISSION_DENIED,
        code: 'NOT_A_PARTY',
        message: /is addressed to MYS; AUS may not answer it/,
        actor: 'member:AUS',
        bulletinId: id,
      });
      await expectRefused(region, async () => sendDocument(aus, 'reply', (await signDelay(key(AUS), AUS, id, 'No.', new Date(clock.now().getTime() + 30 * DAY), clock)).sdJwt), {
        status: grpc.status.PERMISSION_DENIED,
        code: 'NOT_A_PARTY',
        message: /AUS may not answer it/,
        actor: 'member:AUS',
      });
      await expectRefused(region, async () => sendDocument(mys, 'withdrawal', (await signWithdrawal(key(MYS), MYS, id, 'Not ours to withdraw.', clock)).sdJwt), {
        status: grpc.status.PERMISSION_DENIED,
        code: 'NOT_A_PARTY',
        message: /was made by IDN; only it may withdraw it/,
        actor: 'member:MYS',
      });
    });

    it('a reply to a withdrawn request, and a second answer', async () => {
      const { signed } = await submit('normal');
      const id = signed.requestId;
      const withdrawn = await sendDocument(idn, 'withdrawal', (await signWithdrawal(key(IDN), IDN, id, 'The passenger was identified by other means.', clock)).sdJwt);
      expect(withdrawn.request).toMatchObject({ state: RequestState.WITHDRAWN });
      await expectRefused(region, async () => sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, id, 'confirmed', ANSWER, clock)).sdJwt), {
        status: grpc.status.FAILED_PRECONDITION,
        code: 'REQUEST_CLOSED',
        message: /was withdrawn at .*; it can no longer be answered/,
        actor: 'member:MYS',
        bulletinId: id,
      });
      await expectRefused(region, async () => sendDocument(mys, 'reply', (await signDelay(key(MYS), MYS, id, 'Later.', new Date(clock.now().getTime() + 30 * DAY), clock)).sdJwt), {
        status: grpc.status.FAILED_PRECONDITION,
        code: 'REQUEST_CLOSED',
        message: /was withdrawn/,
        actor: 'member:MYS',
      });
      await expectRefused(region, async () => sendDocument(idn, 'withdrawal', (await signWithdrawal(key(IDN), IDN, id, 'Again.', clock)).sdJwt), {
        status: grpc.status.FAILED_PRECONDITION,
        code: 'REQUEST_CLOSED',
        message: /was withdrawn/,
        actor: 'member:IDN',
      });
      // The withdrawal reached both sides.
      const notices = (await noticesOf(await region.connect({ kind: 'agency', id: MYS_POLICE }), MYS_POLICE)).filter((n) => n.request?.id === id);
      expect(notices.map((n) => n.state)).toEqual([RequestState.OPEN, RequestState.WITHDRAWN]);

      const other = (await submit('normal')).signed.requestId;
      await sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, other, 'confirmed', ANSWER, clock)).sdJwt);
      await expectRefused(region, async () => sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, other, 'not-confirmed', ANSWER, clock)).sdJwt), {
        status: grpc.status.FAILED_PRECONDITION,
        code: 'REQUEST_CLOSED',
        message: /was answered at .*; it can no longer be answered/,
        actor: 'member:MYS',
      });
    });

    it('a request to an unknown state or to itself, unknown requests, bad content, wrong typ, personal data in clear, a handling that shuts the addressee out', async () => {
      const ghost = `IDN:${randomBytes(16).toString('base64url')}`;
      await expectRefused(region, () => submit('normal', DRAFT, asMemberId('ZZZ')), { status: grpc.status.NOT_FOUND, code: 'NOT_FOUND', message: /ZZZ is not a member of this region/, actor: 'member:IDN' });
      await expectRefused(
        region,
        async () => {
          // The node refuses to sign this; a member's own software might not.
          const iat = epochSeconds(clock.now());
          const claims = { iss: memberUri(IDN), jti: randomBytes(16).toString('base64url'), iat, exp: iat + 86_400, to: 'IDN', type: 'general', urgency: 'normal', handling: { tlp: 'AMBER', releasable_to: { members: ['IDN'], agencies: [] }, code: 'H2', personal_data: false }, content: { title: 'To myself', text: 'Hello' } };
          const issued = await issueSdJwt(key(IDN), REQUEST_TYP, claims, []);
          return idn.requests.unary(RequestService.method.submit, create(RequestServiceSubmitRequestSchema, { sdJwt: Buffer.from(issued.sdJwt, 'latin1') }));
        },
        { status: grpc.status.INVALID_ARGUMENT, code: 'CONTENT_INVALID', message: /does not address a request to itself/, actor: 'member:IDN' },
      );
      await expectRefused(region, async () => sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, ghost, 'confirmed', ANSWER, clock)).sdJwt), {
        status: grpc.status.NOT_FOUND,
        code: 'NOT_FOUND',
        message: /there is no request/,
        actor: 'member:MYS',
        bulletinId: ghost,
      });
      const { signed } = await submit('normal');
      await expectRefused(region, async () => sendDocument(mys, 'reply', (await signAnswer(key(MYS), MYS, signed.requestId, 'granted', ANSWER, clock)).sdJwt), {
        status: grpc.status.INVALID_ARGUMENT,
        code: 'CONTENT_INVALID',
        message: /an answer to a travel-document-verification request is confirmed, not-confirmed, inconclusive/,
        actor: 'member:MYS',
      });
      await expectRefused(region, async () => sendDocument(mys, 'reply', (await signDelay(key(MYS), MYS, signed.requestId, 'Sooner than due.', new Date(clock.now().getTime() + HOUR), clock)).sdJwt), {
        status: grpc.status.INVALID_ARGUMENT,
        code: 'CONTENT_INVALID',
        message: /a delay notice sets a date after/,
        actor: 'member:MYS',
      });
      // An answer sent where requests go.
      await expectRefused(region, async () => sendDocument(mys, 'request', (await signAnswer(key(MYS), MYS, signed.requestId, 'confirmed', ANSWER, clock)).sdJwt), {
        status: grpc.status.INVALID_ARGUMENT,
        code: 'JWS_WRONG_TYPE',
        message: new RegExp(`typ "${ANSWER_TYP.replace('+', '\\+')}" is wrong here`),
        actor: 'member:MYS',
      });
      // Personal data in clear: a person not made a Disclosure.
      await expectRefused(
        region,
        async () => {
          const iat = epochSeconds(clock.now());
          const claims = { iss: memberUri(IDN), jti: randomBytes(16).toString('base64url'), iat, exp: iat + 86_400, to: 'MYS', type: 'nationality-verification', urgency: 'normal', handling: { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS'], agencies: [] }, code: 'H2', personal_data: true }, content: { title: 'Nationality', text: 'Is this person Malaysian?', persons: [{ name: 'Siti binti Rahman' }] } };
          const issued = await issueSdJwt(key(IDN), REQUEST_TYP, claims, []);
          return idn.requests.unary(RequestService.method.submit, create(RequestServiceSubmitRequestSchema, { sdJwt: Buffer.from(issued.sdJwt, 'latin1') }));
        },
        { status: grpc.status.INVALID_ARGUMENT, code: 'CONTENT_INVALID', message: /\/content\/persons\/0: personal data must be selectively disclosable/, actor: 'member:IDN' },
      );
      // TLP:RED naming only Indonesia's own agency: the addressee's central authority would never see it.
      await expectRefused(
        region,
        () => submit('normal', { ...DRAFT, handling: { tlp: 'RED', releasable_to: { members: [], agencies: ['IDN:police'] }, code: 'H2', personal_data: true } }),
        { status: grpc.status.PERMISSION_DENIED, code: 'POLICY_REFUSED', message: /releases the request to MYS to no agency of the addressee \(MYS:police: TLP:RED goes only to the agencies the originator names/, actor: 'member:IDN' },
      );
      // Another member's key under Indonesia's name.
      await expectRefused(
        region,
        async () => {
          const forged = await signRequest(key(MYS), IDN, DRAFT, { to: MYS, type: 'general', urgency: 'normal' }, clock);
          return sendDocument(idn, 'request', forged.sdJwt);
        },
        { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_UNKNOWN_KEY', message: /is not an active signing key of member IDN/, actor: 'member:IDN' },
      );
      // The same jti with other bytes.
      await expectRefused(
        region,
        async () => sendDocument(idn, 'request', (await signRequest(key(IDN), IDN, { ...DRAFT, jti: signed.jti }, { to: MYS, type: 'general', urgency: 'urgent' }, clock)).sdJwt),
        { status: grpc.status.ALREADY_EXISTS, code: 'JTI_REUSED', message: /already used with different bytes/, actor: 'member:IDN' },
      );
      // Only member nodes submit; an agency is refused before anything is read.
      const agency = await region.connect({ kind: 'agency', id: IDN_POLICE });
      await expectRefused(region, async () => sendDocument(agency, 'request', (await submitBytes()).sdJwt), {
        status: grpc.status.PERMISSION_DENIED,
        code: 'WRONG_PRINCIPAL_KIND',
        message: /SubmitRequest is for members/,
        actor: 'agency:IDN:police',
      });
    });

    const submitBytes = () => signRequest(key(IDN), IDN, DRAFT, { to: MYS, type: 'general', urgency: 'normal' }, clock);
  });
});

describe('cooperation requests under restrictive agreements', () => {
  let region: TestRegion;

  beforeAll(async () => {
    // Australia designates no central authority; the agreement shares identities but not documents.
    const regionFile = { ...TEST_REGION, members: TEST_REGION.members.map((m) => (m.id === 'AUS' ? { id: m.id, name: m.name } : m)) };
    region = await startTestRegion({ region: regionFile, agreements: [{ ...OPEN_AGREEMENT, id: 'identities-only', personal_data: ['identity'] }] });
  });
  afterAll(async () => {
    await region?.close();
  });

  it('releases the answer to the requester field by field, as for a bulletin; refuses a request to a state with no central authority', async () => {
    const idn = await region.connect({ kind: 'member', id: IDN });
    const mys = await region.connect({ kind: 'member', id: MYS });
    const idnKey = await memberKey(region.home, IDN);
    const mysKey = await memberKey(region.home, MYS);
    const clock: Clock = { now: () => new Date() };

    const before = await snapshot(region);
    const refused = await failure(sendDocument(idn, 'request', (await signRequest(idnKey, IDN, DRAFT, { to: AUS, type: 'information-request', urgency: 'high' }, clock)).sdJwt));
    expect(refused).toMatchObject({ status: grpc.status.FAILED_PRECONDITION, code: 'NO_CENTRAL_AUTHORITY' });
    expect(refused.details).toMatch(/AUS has designated no central authority/);
    expect(await snapshot(region)).toEqual({ ...before, events: before.events + 1 });

    const { requestId: id } = await signRequest(idnKey, IDN, DRAFT, { to: MYS, type: 'travel-document-verification', urgency: 'high' }, clock).then(async (signed) => {
      await sendDocument(idn, 'request', signed.sdJwt);
      return signed;
    });
    await sendDocument(mys, 'reply', (await signAnswer(mysKey, MYS, id, 'not-confirmed', ANSWER, clock)).sdJwt);

    const trust = createTrustStore({ pins: memoryPins(), directory: hubKeyDirectory(idn), clock, log: silent });
    const connection = await region.connect({ kind: 'agency', id: IDN_POLICE });
    const answer = (await noticesOf(connection, IDN_POLICE)).find((n) => n.request?.id === id && n.state === RequestState.ANSWERED);
    if (answer === undefined) throw new Error('no answer notice');
    expect(answer.withheld.map((w) => w.kind)).toEqual(['document']);
    expect(answer.withheld[0]?.reason).toMatch(/no agreement in force between MYS and IDN shares document data/);
    const verified = await verifyNoticeDocument(trust, IDN_POLICE, answer, clock.now());
    if (verified?.claims.kind !== 'answer') throw new Error('not an answer');
    expect(verified.claims.content.persons).toHaveLength(1);
    expect(verified.claims.content.documents).toHaveLength(0);
    // The requested state receives the document it is asked to verify: Protocol art. 13 is the legal basis for that.
    const asked = (await noticesOf(await region.connect({ kind: 'agency', id: MYS_POLICE }), MYS_POLICE)).find((n) => n.request?.id === id);
    expect(asked?.withheld).toEqual([]);
    const request = await verifyNoticeDocument(trust, MYS_POLICE, asked ?? answer, clock.now());
    if (request?.claims.kind !== 'request') throw new Error('not a request');
    expect(request.claims.content.documents.map((d) => d.number)).toEqual(['A51234567']);
    expect(asked?.reason).toMatch(/personal data|MYS:police acts for MYS/);
    expect(requestId(IDN, id.slice(4))).toBe(id);
  });
});
