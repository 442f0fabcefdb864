/**
 * `corridor demo` (what `npm start` runs): a whole region on one machine. It creates the dev PKI
 * and the demo region once, starts the embedded PostgreSQL and the hub, a node per member and a
 * subscriber per agency, publishes the examples, one tampered bulletin to show a refusal, and
 * prints one line per publication, delivery, withheld delivery and refusal. Ctrl-C stops it all;
 * a second start reuses the state and publishes nothing twice.
 */
import { create } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { asMemberId, asOperatorId } from '../../core/ids.js';
import { systemClock } from '../../core/clock.js';
import type { MemberId } from '../../core/ids.js';
import { importSigningKey } from '../../core/jws.js';
import { AuditService, EventKind, GetCheckpointRequestSchema, ListEventsRequestSchema } from '../../gen/corridor/v1/audit_pb.js';
import { ExchangeService, PublishRequestSchema } from '../../gen/corridor/v1/exchange_pb.js';
import { readHubConfig } from '../../hub/config.js';
import { startHub } from '../../hub/hub.js';
import { provideDatabase } from '../../infra/database.js';
import { memberSigningKeyFile } from '../../infra/home.js';
import { readPrivateJwkFile } from '../../infra/keys.js';
import { createLogger } from '../../infra/log.js';
import type { Logger } from '../../infra/log.js';
import { startAgencyClient } from '../agency.js';
import type { RunningAgencyClient } from '../agency.js';
import { readNodeConfig } from '../config.js';
import { connectHub } from '../hub-client.js';
import type { HubConnection, TlsMaterial } from '../hub-client.js';
import { startNode } from '../node.js';
import type { RunningNode } from '../node.js';
import { prepareBulletin } from '../publisher.js';
import { DEMO_AGREEMENTS, DEMO_PUBLICATIONS } from '../demo/region.js';
import { DEMO_OVERDUE_CHECK_MS, DEMO_URGENT_SECONDS, NoticeTracker, noticeLine, runDemoRequests } from '../demo/requests.js';
import { agreementVersions, changeAgreementAtHub } from '../agreements.js';
import { describeFailure, homeFrom, tlsFor, untilSignal } from './common.js';
import { openMonitor, roundLines } from './node-audit.js';
import { pkiInit } from './pki.js';

const EXAMPLES = new URL('../../../examples/', import.meta.url);

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run a demo region on this machine: hub, member nodes and agency subscribers (what `npm start` runs); Ctrl-C stops it')
    .option('--exit-after-publishing', 'stop once every example is published and delivered (for scripts and tests)')
    .action(async (options: { exitAfterPublishing?: boolean }) => {
      await runDemo(homeFrom(program.opts<{ home?: string }>()), options.exitAfterPublishing === true);
    });
}

export async function runDemo(home: string, exitAfterPublishing: boolean): Promise<void> {
  const say = (line: string): void => console.log(line);
  const { region, created } = await pkiInit({ home });
  say(`Corridor demo: ${region.name}: ${region.members.length} members, ${region.agencies.length} agencies, ${region.operators.length} operator${region.operators.length === 1 ? '' : 's'}`);
  say(created > 0 ? `created the dev PKI and region in ${home}` : `reusing the state in ${home}`);

  const log = createLogger({ name: 'demo', level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
  // The demo holds the embedded cluster for the nodes and agencies (and the hub, unless
  // DATABASE_URL points it elsewhere) and stops it last, after everything that uses it.
  const cluster = await provideDatabase({ databaseUrl: undefined, home, name: 'corridor_demo', log: log.child({ component: 'db' }) });
  const configured = await readHubConfig({ ...process.env, CORRIDOR_HOME: home });
  // The one demo setting: an urgent request is due in seconds, not 8 hours, so that the overdue check can be watched.
  const hubConfig = {
    ...configured,
    requests: { deadlineSeconds: { ...configured.requests.deadlineSeconds, urgent: DEMO_URGENT_SECONDS }, overdueCheckIntervalMs: DEMO_OVERDUE_CHECK_MS },
  };
  const requestNotices = new NoticeTracker();
  const hub = await startHub(hubConfig, log.child({ component: 'hub' })).catch(async (error: unknown) => {
    await cluster.release();
    throw error;
  });
  const hubAddress = `localhost:${hub.port}`;
  say(`hub listening on ${hubAddress}${hub.metricsPort === undefined ? '' : `, metrics on http://127.0.0.1:${hub.metricsPort}/metrics`}`);

  const nodes = new Map<MemberId, RunningNode>();
  const agencies: RunningAgencyClient[] = [];
  let operator: HubConnection | undefined;
  let stopTail: (() => Promise<void>) | undefined;
  try {
    for (const member of region.members) {
      const config = await readNodeConfig({ ...process.env, CORRIDOR_HOME: home }, { member: member.id, hubAddress });
      nodes.set(member.id, await startNode(config, log.child({ component: `node-${member.id}` })));
    }
    say(`${nodes.size} member nodes running (local APIs under ${home}/members/*/node.sock)`);

    // The operator's view: withheld deliveries and refusals, from the audit log.
    const duty = region.operators[0];
    if (duty !== undefined) {
      const dutyTls = await tlsFor(home, { kind: 'operator', id: duty.id });
      operator = connectHub(hubAddress, dutyTls);
      await recordAgreements(operator, { id: duty.id, tls: dutyTls }, say);
      stopTail = await tailAudit(operator, say, log);
    }

    let expected = 0;
    let delivered = 0;
    let onDelivered: (() => void) | undefined;
    for (const agency of region.agencies) {
      agencies.push(
        await startAgencyClient({ home, agency: agency.id, hubAddress, databaseUrl: undefined }, log.child({ component: `agency-${agency.id}` }), {
          onDelivery: (d) => {
            say(`delivered  ${d.agency.padEnd(17)} ← ${d.bulletinId}  "${d.claims.content.title}"  (${d.reason})`);
            for (const field of d.withheld) {
              const marking = field.kind === 'migrant' ? 'protection-marked ' : '';
              say(`withheld   ${d.agency.padEnd(17)} ✗ ${marking}${field.kind} data of ${d.bulletinId}: ${field.reason}`);
            }
            delivered++;
            onDelivered?.();
          },
          onRejected: (r) => say(`REJECTED   ${r.agency.padEnd(17)} ✗ ${r.bulletinId}: ${r.code}: ${r.reason}`),
          onRequestNotice: (n) => {
            say(noticeLine(n));
            requestNotices.record(n);
          },
        }),
      );
    }
    say(`${agencies.length} agency subscribers running`);

    for (const publication of DEMO_PUBLICATIONS) {
      const node = nodes.get(asMemberId(publication.member));
      if (node === undefined) continue;
      const draft = await readFile(new URL(publication.file, EXAMPLES));
      const submitted = await node.submit(draft);
      if (submitted.state === 'published') {
        say(`already    ${submitted.bulletinId} was published in an earlier run (sequence ${submitted.sequence ?? '?'})`);
        continue;
      }
      const submission = await waitForHub(node, submitted.bulletinId);
      if (submission.state === 'published') {
        say(`published  ${submission.bulletinId}  from examples/${publication.file}: sequence ${submission.sequence ?? '?'}, audit position ${submission.auditPosition ?? '?'}`);
        expected += Number(await countDeliveries(operator, submission.bulletinId));
      } else {
        say(`not published  ${submission.bulletinId}: ${submission.refusal ?? submission.state}`);
      }
    }
    await publishTampered(home, hubAddress, asMemberId('THA'), say);
    await runDemoRequests(home, hubAddress, say, log, requestNotices);

    if (exitAfterPublishing) {
      // Wait (bounded) until every delivery released in this run has been stored by its agency.
      const deadline = Date.now() + 30_000;
      while (delivered < expected && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          onDelivered = resolve;
          setTimeout(resolve, 250);
        });
      }
      say(`demo complete: ${delivered} new deliveries stored and acknowledged`);
      await showAuditCheck(home, hubAddress, asMemberId('IDN'), operator, say, log);
    } else {
      await showAuditCheck(home, hubAddress, asMemberId('IDN'), operator, say, log);
      say('running; Ctrl-C stops the region');
      await untilSignal();
    }
  } finally {
    say('stopping');
    await stopTail?.();
    operator?.close();
    await Promise.all(agencies.map((a) => a.close()));
    await Promise.all([...nodes.values()].map((n) => n.close()));
    await hub.close();
    await cluster.release();
    say('stopped');
  }
}

/**
 * One round of `member`'s audit monitor, as `corridor node audit monitor --once` runs it: the
 * node verifies the hub's latest checkpoint against the one it verified before, every new entry,
 * its own publications and its agencies' deliveries, and cosigns it as a witness.
 */
async function showAuditCheck(home: string, hubAddress: string, member: MemberId, operator: HubConnection | undefined, say: (line: string) => void, log: Logger): Promise<void> {
  try {
    // Let the log integrate what was just recorded, so that the round covers it.
    if (operator !== undefined) await waitForIntegration(operator, await lastPosition(operator, 0n));
    const config = await readNodeConfig({ ...process.env, CORRIDOR_HOME: home }, { member, hubAddress });
    const monitor = await openMonitor(config, { log: log.child({ component: `monitor-${member}` }), maxMergeDelayMs: 300_000, witness: true });
    try {
      const lines = roundLines(await monitor.round(), member);
      [...lines.out, ...lines.err].forEach((line, i) => say(`audit      ${i === 0 ? `${member}'s monitor: ` : ''}${line.trim()}`));
    } finally {
      await monitor.close();
    }
  } catch (error) {
    say(`audit      ${member}'s monitor could not complete a round: ${describeFailure(error)}`);
  }
}

async function waitForIntegration(operator: HubConnection, position: bigint): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const latest = await operator.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
    if (latest !== undefined && latest.treeSize >= position) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Records the demo's sharing agreements, signed by the duty officer, unless an earlier run did. */
async function recordAgreements(operator: HubConnection, officer: { id: string; tls: TlsMaterial }, say: (line: string) => void): Promise<void> {
  for (const agreement of DEMO_AGREEMENTS) {
    const existing = await agreementVersions(operator, agreement.id);
    if (existing.length > 0) {
      say(`agreement  ${agreement.id}@${existing.length} already recorded`);
      continue;
    }
    const version = await changeAgreementAtHub(operator, { id: asOperatorId(officer.id), tls: officer.tls }, { action: 'put', agreement, amend: false }, systemClock);
    say(
      `agreement  ${version.agreementId}@${version.version} recorded: ${agreement.parties.join(' ')}; personal data: ${agreement.personal_data.join(', ')} (audit position ${version.auditPosition})`,
    );
  }
}

async function waitForHub(node: RunningNode, bulletinId: string): Promise<NonNullable<Awaited<ReturnType<RunningNode['submission']>>>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const submission = await node.submission(bulletinId);
    if (submission === undefined) throw new Error(`the node lost ${bulletinId}`);
    if (submission.state !== 'pending' || Date.now() > deadline) return submission;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How many agencies the policy released a bulletin to, as the operator sees it in the audit log. */
async function countDeliveries(operator: HubConnection | undefined, bulletinId: string): Promise<number> {
  if (operator === undefined) return 0;
  const response = await operator.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { bulletinId, kinds: [EventKind.DELIVER], pageSize: 1000 }));
  return response.events.length;
}

/** A bulletin altered after signing, as if in transit: the hub must refuse it, and says why. */
async function publishTampered(home: string, hubAddress: string, member: MemberId, say: (line: string) => void): Promise<void> {
  const key = await importSigningKey(await readPrivateJwkFile(memberSigningKeyFile(home, member)));
  const draft = Buffer.from(
    JSON.stringify({
      category: 'carrier_alert',
      handling: { tlp: 'GREEN', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
      content: {
        title: 'Speedboat shuttles across the Strait of Malacca at night',
        summary: 'Original text as signed by the originator.',
        states_concerned: ['THA', 'MYS'],
        language: 'en',
        evaluation: { source_reliability: 'B', information_assessment: 3 },
        validity: { from: new Date().toISOString().slice(0, 10) },
        conveyances: [{ type: 'vessel', role: 'transport', description: 'Grey speedboat, twin outboard engines, no markings' }],
        carrier_alert: { last_seen: { state: 'THA', place: 'Satun coast' }, heading_to: { state: 'MYS', place: 'Langkawi' }, requested_actions: ['report_sightings'] },
      },
    }),
  );
  const prepared = await prepareBulletin(draft, member, key, { now: () => new Date() });
  const [issuerJwt = '', ...disclosures] = Buffer.from(prepared.jws).toString('latin1').split('~');
  const [header, payload, signature] = issuerJwt.split('.');
  const altered = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  altered['handling'] = { tlp: 'CLEAR', releasable_to: { members: ['MYS', 'IDN', 'AUS', 'LKA'], agencies: [] }, code: 'H2', personal_data: false };
  const tampered = Buffer.from(`${header ?? ''}.${Buffer.from(JSON.stringify(altered)).toString('base64url')}.${signature ?? ''}~${disclosures.join('~')}`);
  const hub = connectHub(hubAddress, await tlsFor(home, { kind: 'member', id: member }));
  try {
    await hub.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: tampered }));
    say(`UNEXPECTED: the hub accepted a tampered bulletin from ${member}`);
  } catch (error) {
    say(`sent       a copy of a ${member} bulletin whose handling was widened after signing: ${describeFailure(error)}`);
  } finally {
    hub.close();
  }
}

/** Prints DENY and REFUSE events appended from now on; returns a stop function. */
async function tailAudit(operator: HubConnection, say: (line: string) => void, log: Logger): Promise<() => Promise<void>> {
  const list = (afterPosition: bigint) =>
    operator.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { afterPosition, pageSize: 1000, kinds: [EventKind.DENY, EventKind.REFUSE] }));
  // Start at the current end of the log: earlier runs' events are not news.
  let after = await lastPosition(operator, 0n);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const page = await list(after);
        for (const event of page.events) {
          const { leaf, details } = event;
          if (leaf?.kind === EventKind.DENY) say(`withheld   ${leaf.agencyId.padEnd(17)} ✗ ${leaf.bulletinId}: ${details?.reason ?? ''}`);
          if (leaf?.kind === EventKind.REFUSE) say(`refused    ${leaf.actor} ${details?.operation ?? ''}: ${details?.reason ?? ''} (${leaf.code})`);
          after = event.position;
        }
      } catch (error) {
        log.warn({ err: error }, 'audit tail failed');
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

async function lastPosition(operator: HubConnection, from: bigint): Promise<bigint> {
  let after = from;
  for (;;) {
    const page = await operator.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { afterPosition: after, pageSize: 1000 }));
    const last = page.events[page.events.length - 1];
    if (last === undefined) return after;
    after = last.position;
  }
}

