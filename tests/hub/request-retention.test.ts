/**
 * The retention purge of cooperation requests, with an injected clock: a request document's
 * retention ends at the earlier of its signed exp and the region default; the purge sets its
 * Disclosures to NULL (digests, paths and kinds stay, so the signed skeleton still verifies),
 * purges the details of the request's events, keeps every leaf (the log still verifies), is
 * audited once per request, and notices no longer present the document.
 */
import { create, isMessage } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import type { AgencyId } from '../../src/core/ids.js';
import type { SigningKey } from '../../src/core/jws.js';
import { AuditService, EventKind, GetCheckpointRequestSchema, ListEventsRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { ExchangeService, SubscribeRequestSchema, SubscribeResponseSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { RequestService, RequestServiceGetRequestSchema } from '../../src/gen/corridor/v1/request_pb.js';
import type { RequestNotice } from '../../src/gen/corridor/v1/request_pb.js';
import { auditVerify } from '../../src/node/cli/audit-tools.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { sendDocument, signRequest } from '../../src/node/requests.js';
import { memberKey } from '../helpers/bulletins.js';
import { sqlOn } from '../helpers/database.js';
import { TEST_REGION, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const MYS_POLICE = asAgencyId('MYS:police');
const DAY = 86_400_000;

const draft = (retentionDays: number) => ({
  requesting_agency: 'IDN:immigration',
  retention_days: retentionDays,
  content: {
    title: 'Verify Malaysian passport presented at Tanjung Priok',
    text: 'The photo page shows signs of substitution. Please confirm whether it was issued as described.',
    persons: [{ name: 'Ahmad bin Yusof', nationality: 'MYS', date_of_birth: '1988-04-12' }],
    documents: [{ type: 'passport', number: 'A51234567', issuing_state: 'MYS', holder_name: 'Ahmad bin Yusof' }],
  },
});

describe('the retention purge of cooperation requests', () => {
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
  let region: TestRegion;
  let idn: HubConnection;
  let mysPolice: HubConnection;
  let auditor: HubConnection;
  let key: SigningKey;
  /** exp in 30 days. */
  let byExp: string;
  /** exp in 400 days: the region default (365 days) ends it. */
  let byDefault: string;

  beforeAll(async () => {
    region = await startTestRegion({ clock, region: { ...TEST_REGION, retentionDays: 365 }, requests: { overdueCheckIntervalMs: 3_600_000 } });
    idn = await region.connect({ kind: 'member', id: IDN });
    mysPolice = await region.connect({ kind: 'agency', id: MYS_POLICE });
    auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
    key = await memberKey(region.home, IDN);
    const submit = async (days: number) => {
      const signed = await signRequest(key, IDN, draft(days), { to: MYS, type: 'travel-document-verification', urgency: 'normal' }, clock);
      await sendDocument(idn, 'request', signed.sdJwt);
      return signed.requestId;
    };
    byExp = await submit(30);
    byDefault = await submit(400);
  });

  afterAll(async () => {
    await region?.close();
  });

  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) => sqlOn<T>(region.databaseUrl, text, values);

  async function purge(): Promise<void> {
    const running = region.hub();
    if (running === undefined) throw new Error('the hub is not running');
    await running.purgeExpired();
  }

  const disclosuresOf = (id: string) =>
    sql<{ position: number; digest: string; path: string; kind: string; encoded: string | null }>(
      `SELECT s.position, s.digest, s.path, s.kind, s.encoded FROM request_disclosure s JOIN request_document d USING (audit_position)
       WHERE d.request_id = $1 ORDER BY s.audit_position, s.position`,
      [id],
    );
  const detailsOf = (id: string) =>
    sql<{ position: string; kind: number; purged: boolean }>(
      `SELECT e.position::text, e.kind, d.details IS NULL AS purged FROM audit_event e JOIN audit_event_detail d USING (position)
       WHERE e.bulletin_id = $1 ORDER BY e.position`,
      [id],
    );
  const purgeEvents = async (id: string) =>
    (await auditor.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { bulletinId: id, kinds: [EventKind.RETENTION_PURGE], pageSize: 100 }))).events;

  async function noticesOf(connection: HubConnection, agency: AgencyId): Promise<RequestNotice[]> {
    const stream = connection.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: agency, afterNotice: 0n }));
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

  async function waitForCheckpoint(position: bigint): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const latest = await auditor.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
      if (latest !== undefined && latest.treeSize >= position) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`no checkpoint covered position ${position} in time`);
  }

  it('purges nothing before a document’s retention ends', async () => {
    await purge();
    expect(await sql('SELECT 1 FROM request_document_purge')).toHaveLength(0);
    expect((await disclosuresOf(byExp)).every((d) => d.encoded !== null)).toBe(true);
    const notice = (await noticesOf(mysPolice, MYS_POLICE)).find((n) => n.request?.id === byExp);
    // Presented with its Disclosures (jwt~d…~kb).
    expect(Buffer.from(notice?.sdJwt ?? []).toString('latin1').split('~').length).toBeGreaterThan(3);
  });

  it('at its exp: purges the Disclosures and the details of its events, keeps the skeleton and the leaves, audits the purge once', async () => {
    const before = await disclosuresOf(byExp);
    expect(before.length).toBeGreaterThanOrEqual(2);
    const documentsBefore = await sql<{ audit_position: string; jws: Buffer }>('SELECT audit_position::text, jws FROM request_document ORDER BY request_document.audit_position');
    const leavesBefore = await sql<{ position: string; leaf_hash: Buffer }>('SELECT position::text, leaf_hash FROM audit_event ORDER BY audit_event.position');
    expect((await detailsOf(byExp)).some((d) => !d.purged)).toBe(true);

    offsetMs = 31 * DAY;
    await purge();
    await purge();

    // Disclosures NULL; digest, path and kind (what the signature commits to) unchanged.
    const after = await disclosuresOf(byExp);
    expect(after.map(({ encoded: _, ...rest }) => rest)).toEqual(before.map(({ encoded: _, ...rest }) => rest));
    expect(after.every((d) => d.encoded === null)).toBe(true);
    // The other request is untouched.
    expect((await disclosuresOf(byDefault)).every((d) => d.encoded !== null)).toBe(true);

    // Audited once, by the hub, naming the request and what ended it.
    const purges = await purgeEvents(byExp);
    expect(purges).toHaveLength(1);
    const [purgeEvent] = purges;
    expect(purgeEvent?.leaf).toMatchObject({ actor: 'hub', bulletinId: byExp, code: 'RETENTION_ENDED', objectId: 'exp' });
    expect(purgeEvent?.details?.reason).toContain(`purged ${before.length} Disclosure(s)`);
    const [record] = await sql<{ purge_position: string; basis: string }>('SELECT purge_position::text, basis FROM request_document_purge WHERE request_id = $1', [byExp]);
    expect(record).toEqual({ purge_position: purgeEvent?.position.toString(), basis: 'exp' });

    // Every earlier event about the request has its details purged; the purge keeps its own.
    const details = await detailsOf(byExp);
    expect(details.filter((d) => d.kind !== EventKind.RETENTION_PURGE).every((d) => d.purged)).toBe(true);
    expect(details.filter((d) => d.kind === EventKind.RETENTION_PURGE).map((d) => d.purged)).toEqual([false]);
    expect(details.map((d) => d.kind)).toEqual(expect.arrayContaining([EventKind.REQUEST_SUBMITTED, EventKind.DELIVER]));

    // The signed documents and every leaf are as they were.
    expect(await sql('SELECT audit_position::text, jws FROM request_document ORDER BY request_document.audit_position')).toEqual(documentsBefore);
    const lastBefore = leavesBefore[leavesBefore.length - 1]?.position ?? '0';
    expect(await sql('SELECT position::text, leaf_hash FROM audit_event WHERE audit_event.position <= $1 ORDER BY audit_event.position', [lastBefore])).toEqual(leavesBefore);

    // Its notices no longer present the document; the requester sees the skeleton alone.
    const notices = (await noticesOf(mysPolice, MYS_POLICE)).filter((n) => n.request?.id === byExp);
    expect(notices.length).toBeGreaterThan(0);
    for (const notice of notices) {
      expect(notice.sdJwt.byteLength).toBe(0);
    }
    const view = await idn.requests.unary(RequestService.method.get, create(RequestServiceGetRequestSchema, { requestId: byExp }));
    expect(Buffer.from(view.documents[0]?.sdJwt ?? []).toString('latin1')).toMatch(/^[^~]+~$/);

    // The whole log still verifies.
    await waitForCheckpoint(purgeEvent?.position ?? 0n);
    const report = await auditVerify({ home: region.home, hub: region.hubAddress, operator: 'auditor' }, () => {});
    expect(report.ok).toBe(true);
  });

  it('at the region default for a document whose exp is later', async () => {
    offsetMs = 366 * DAY;
    await purge();
    expect((await disclosuresOf(byDefault)).every((d) => d.encoded === null)).toBe(true);
    const purges = await purgeEvents(byDefault);
    expect(purges.map((e) => e.leaf?.objectId)).toEqual(['region-default']);
    // The earlier request is not purged again.
    expect(await purgeEvents(byExp)).toHaveLength(1);
  });
});
