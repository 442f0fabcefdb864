/** `corridor node …`: run a member node, publish through it, follow a submission, subscribe as an agency. */
import type { Command } from 'commander';
import { asAgencyId } from '../../core/ids.js';
import { createLogger } from '../../infra/log.js';
import { startAgencyClient } from '../agency.js';
import type { Submission } from '../outbox.js';
import { readNodeConfig } from '../config.js';
import { getSubmission, isNodeListening, publishDirect, startNode, submitToNode } from '../node.js';
import { handlingInstruction } from '../../core/policy.js';
import { contentToJson } from '../../core/content.js';
import type { MarkedDelivery, RejectedDelivery, VerifiedDelivery } from '../subscriber.js';
import { requestNoticeJson, requestNoticeLine } from './request.js';
import { homeFrom, hubAddressFrom, nonEmpty, parseTime, readInput, untilSignal } from './common.js';
import { followUpHeadline, parseLifecycleAction, statusNote, withLifecycle, withdrawalDraftFor } from '../follow-up.js';
import { connectHub } from '../hub-client.js';
import { loadTlsIdentity } from '../pki/dev-pki.js';
import { searchAsAgency } from '../search.js';
import type { SearchResult } from '../search.js';
import type { NodeConfig } from '../config.js';

interface GlobalOptions {
  home?: string;
}

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description("a member state's node and its agencies' clients");
  const home = (): GlobalOptions => program.opts<GlobalOptions>();

  node
    .command('start')
    .description("run a member node until SIGINT or SIGTERM: holds the state's signing key, stores and forwards bulletins, serves the local API")
    .requiredOption('--member <id>', 'the member state (ISO 3166-1 alpha-3)', process.env['CORRIDOR_MEMBER'])
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--socket <path>', 'Unix socket of the local API (CORRIDOR_NODE_SOCKET)')
    .option('--config <file>', 'node configuration file (JSON; CORRIDOR_NODE_CONFIG)')
    .action(async (options: { member: string; hub?: string; socket?: string; config?: string }) => {
      const config = await readNodeConfig(process.env, {
        member: options.member,
        home: home().home,
        hubAddress: options.hub,
        socketPath: options.socket,
        configFile: options.config,
      });
      const log = createLogger({ name: `node-${config.member}`, level: config.logLevel });
      const running = await startNode(config, log);
      console.error(`corridor node ${config.member} listening on ${running.socketPath}`);
      await untilSignal();
      await running.close();
    });

  node
    .command('publish')
    .description(
      'publish a bulletin draft (JSON, "-" for stdin) through the running node, or sign and publish it directly when none runs; ' +
        'with --supersedes and --action, a follow-up of one of your bulletins (a withdrawal takes only --reason, no draft)',
    )
    .argument('[file]', 'the draft: category, handling, content, optional jti and retention_days (none for a withdrawal)')
    .requiredOption('--member <id>', 'the publishing member state', process.env['CORRIDOR_MEMBER'])
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--direct', 'sign and publish in this process, without the node (nothing is stored or retried)')
    .option('--wait', 'through the node: wait until the hub has answered')
    .option('--supersedes <id>', 'publish a follow-up of this bulletin of yours (MEMBER:jti): the latest of its thread')
    .option('--action <action>', 'with --supersedes: update, correction or withdrawal')
    .option('--reason <text>', 'with --supersedes: why (required for a withdrawal, which carries nothing else)')
    .action(async (file: string | undefined, options: { member: string; hub?: string; direct?: boolean; wait?: boolean; supersedes?: string; action?: string; reason?: string }) => {
      const config = await readNodeConfig(process.env, { member: options.member, home: home().home, hubAddress: options.hub });
      const draft = await publishInput(file, options, config);
      if (options.direct !== true && (await isNodeListening(config.socketPath))) {
        let submission = await submitToNode(config.socketPath, draft);
        const deadline = Date.now() + 60_000;
        while (options.wait === true && submission.state === 'pending' && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          submission = await getSubmission(config.socketPath, submission.bulletinId);
        }
        console.log(submissionLine(submission));
        if (submission.state === 'refused') process.exitCode = 1;
        return;
      }
      if (options.direct !== true) console.error(`no node runs on ${config.socketPath}; signing and publishing directly`);
      const log = createLogger({ name: `node-${config.member}`, level: 'warn', fd: 2 });
      const result = await publishDirect(config, draft, log);
      console.log(`${result.bulletinId} published${result.replayed ? ' (already, same bytes)' : ''}: sequence ${result.sequence}, audit position ${result.auditPosition}`);
    });

  node
    .command('status')
    .description("a submission's state and receipt, from the running node")
    .argument('<bulletin-id>', 'MEMBER:jti')
    .requiredOption('--member <id>', 'the member state whose node to ask', process.env['CORRIDOR_MEMBER'])
    .action(async (bulletinId: string, options: { member: string }) => {
      const config = await readNodeConfig(process.env, { member: options.member, home: home().home });
      if (!(await isNodeListening(config.socketPath))) throw new Error(`no node runs on ${config.socketPath}; start it with \`corridor node start --member ${config.member}\``);
      console.log(submissionLine(await getSubmission(config.socketPath, bulletinId)));
    });

  node
    .command('subscribe')
    .description("receive an agency's deliveries: verify each, store it, acknowledge it; resume after the last stored cursor")
    .requiredOption('--agency <id>', 'the agency, e.g. MYS:police', process.env['CORRIDOR_AGENCY'])
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--from <cursor>', 're-read after this cursor instead of resuming')
    .option('--until-caught-up', 'exit once the backlog has been delivered')
    .option('--json', 'one JSON object per delivery')
    .action(async (options: { agency: string; hub?: string; from?: string; untilCaughtUp?: boolean; json?: boolean }) => {
      const agency = asAgencyId(options.agency);
      const log = createLogger({ name: `agency-${agency}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
      const from = options.from === undefined ? undefined : parseCursor(options.from);
      let resolveCaughtUp: (() => void) | undefined;
      const caughtUp = new Promise<void>((resolve) => (resolveCaughtUp = resolve));
      const client = await startAgencyClient(
        {
          home: homeFrom(home()),
          agency,
          hubAddress: hubAddressFrom(options),
          databaseUrl: nonEmpty(process.env['CORRIDOR_NODE_DATABASE_URL']),
          ...(from === undefined ? {} : { fromCursor: from }),
        },
        log,
        {
          onDelivery: (delivery) => console.log(options.json === true ? deliveryJson(delivery) : deliveryLine(delivery)),
          onRejected: (rejection) => console.error(rejectionLine(rejection)),
          onMarked: (marking) => console.log(options.json === true ? markingJson(marking) : markingLine(marking)),
          onRequestNotice: (notice) => console.log(options.json === true ? requestNoticeJson(notice) : requestNoticeLine(notice)),
          onCaughtUp: (cursor) => {
            if (options.json !== true) console.error(`caught up at cursor ${cursor}; waiting for live bulletins`);
            resolveCaughtUp?.();
          },
        },
      );
      const stopWhen = options.untilCaughtUp === true ? caughtUp : untilSignal();
      await Promise.race([stopWhen, client.done]);
      await client.close();
      await client.done;
    });

  node
    .command('search')
    .description('search the bulletins released to an agency: each result verified as a delivery, newest first, a page at a time')
    .requiredOption('--agency <id>', 'the agency, e.g. MYS:police', process.env['CORRIDOR_AGENCY'])
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--state <id...>', 'concerning any of these member states (states concerned, waypoints, originator)')
    .option('--waypoint <place>', 'with a route waypoint at this place (the whole name, any case)')
    .option('--waypoint-state <id...>', 'with a route waypoint in any of these states')
    .option('--category <category...>', 'any of these categories')
    .option('--from-member <id>', 'originated by this member')
    .option('--since <time>', 'published at or after this time (ISO 8601)')
    .option('--until <time>', 'published before this time (ISO 8601)')
    .option('--text <words>', 'words to find ("a phrase", -excluded, or); never in data withheld from you')
    .option('--limit <n>', 'results per page (1-100)', '20')
    .option('--page <token>', 'the next-page token a previous search printed')
    .option('--json', 'one JSON object per result, then one with the next page token')
    .action(
      async (options: {
        agency: string;
        hub?: string;
        state?: string[];
        waypoint?: string;
        waypointState?: string[];
        category?: string[];
        fromMember?: string;
        since?: string;
        until?: string;
        text?: string;
        limit: string;
        page?: string;
        json?: boolean;
      }) => {
        const agency = asAgencyId(options.agency);
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new Error('--limit must be an integer from 1 to 100');
        const log = createLogger({ name: `agency-${agency}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
        const { results, nextPageToken } = await searchAsAgency(
          { home: homeFrom(home()), agency, hubAddress: hubAddressFrom(options), databaseUrl: nonEmpty(process.env['CORRIDOR_NODE_DATABASE_URL']) },
          {
            ...(options.state === undefined ? {} : { states: options.state }),
            ...(options.waypoint === undefined ? {} : { waypointPlace: options.waypoint }),
            ...(options.waypointState === undefined ? {} : { waypointStates: options.waypointState }),
            ...(options.category === undefined ? {} : { categories: options.category }),
            ...(options.fromMember === undefined ? {} : { originator: options.fromMember }),
            ...(options.since === undefined ? {} : { sinceMs: parseTime(options.since, '--since') }),
            ...(options.until === undefined ? {} : { untilMs: parseTime(options.until, '--until') }),
            ...(options.text === undefined ? {} : { text: options.text }),
            pageSize: limit,
            ...(options.page === undefined ? {} : { pageToken: options.page }),
          },
          log,
        );
        for (const result of results) console.log(options.json === true ? searchResultJson(result) : searchResultLine(result));
        if (options.json === true) console.log(JSON.stringify({ nextPage: nextPageToken === '' ? null : nextPageToken }));
        else if (results.length === 0) console.error('no bulletin released to you matches');
        if (options.json !== true && nextPageToken !== '') console.error(`more: --page ${nextPageToken}`);
        if (results.some((r) => r.kind === 'rejected')) process.exitCode = 1;
      },
    );
}

/** One search result in a line: a follow-up and a withdrawn or superseded bulletin say so. */
export function searchResultLine(result: SearchResult): string {
  if (result.kind === 'rejected') return `REJECTED #${result.cursor} ${result.bulletinId}: ${result.code}: ${result.reason} (not shown: it does not verify)`;
  const { claims } = result;
  const followUp = followUpHeadline(claims);
  const withheld = result.withheld.length === 0 ? '' : `  [withheld: ${result.withheld.join(', ')}]`;
  const marked = result.marked === undefined ? '' : `  [MARKED: ${result.marked}; do not rely on it]`;
  const line = `#${result.cursor}  ${result.bulletinId}  ${result.hubTime.toISOString()}  ${claims.category}  TLP:${claims.handling.tlp}  "${claims.content.title}"${withheld}${marked}${statusNote(result.status)}`;
  return followUp === undefined ? line : `${followUp}  ${line}`;
}

function searchResultJson(result: SearchResult): string {
  if (result.kind === 'rejected') return JSON.stringify({ rejected: true, cursor: result.cursor.toString(), bulletinId: result.bulletinId, code: result.code, reason: result.reason });
  return JSON.stringify({
    cursor: result.cursor.toString(),
    bulletinId: result.bulletinId,
    hubTime: result.hubTime.toISOString(),
    issuer: result.claims.issuer,
    category: result.claims.category,
    handling: result.claims.handling,
    content: result.claims.content,
    ...(result.claims.lifecycle === undefined ? {} : { lifecycle: result.claims.lifecycle }),
    status: result.status,
    withheld: result.withheld,
    ...(result.marked === undefined ? {} : { marked: result.marked }),
  });
}

/**
 * The draft to publish: the file as it is; with --supersedes, the file made a follow-up (update,
 * correction) or, for a withdrawal, a draft made from the reason and the withdrawn bulletin.
 */
async function publishInput(
  file: string | undefined,
  options: { supersedes?: string; action?: string; reason?: string },
  config: NodeConfig,
): Promise<Uint8Array> {
  if (options.supersedes === undefined) {
    if (options.action !== undefined || options.reason !== undefined) throw new Error('--action and --reason go with --supersedes');
    if (file === undefined) throw new Error('give the draft file (or - for stdin)');
    return readInput(file);
  }
  if (options.action === undefined) throw new Error('--supersedes needs --action update, correction or withdrawal');
  const action = parseLifecycleAction(options.action);
  if (action !== 'withdrawal') {
    if (file === undefined) throw new Error(`an ${action === 'update' ? 'update' : 'correction'} is a full draft: give its file (or - for stdin)`);
    return withLifecycle(await readInput(file), { action, supersedes: options.supersedes, reason: options.reason });
  }
  if (file !== undefined) throw new Error('a withdrawal carries only its reason: give --reason, not a draft file');
  if (options.reason === undefined || options.reason.trim() === '') throw new Error('a withdrawal needs --reason');
  // The withdrawn bulletin's category, handling and states come from the hub, as its originator sees it.
  const hub = connectHub(config.hubAddress, await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca), { 'grpc.use_local_subchannel_pool': 1 });
  try {
    return await withdrawalDraftFor(hub, config.member, options.supersedes, options.reason, { now: () => new Date() });
  } finally {
    hub.close();
  }
}

function parseCursor(value: string): bigint {
  if (!/^\d{1,19}$/.test(value)) throw new Error('--from must be a cursor (a non-negative integer)');
  return BigInt(value);
}

export function submissionLine(submission: Submission): string {
  switch (submission.state) {
    case 'published':
      return `${submission.bulletinId} published: sequence ${submission.sequence ?? '?'}, audit position ${submission.auditPosition ?? '?'}`;
    case 'refused':
      return `${submission.bulletinId} refused by the hub: ${submission.refusal ?? 'no reason given'}`;
    default:
      return `${submission.bulletinId} pending: stored by the node, ${submission.attempts} attempt(s) so far; it is published when the hub answers`;
  }
}

export function deliveryLine(delivery: VerifiedDelivery): string {
  const { claims } = delivery;
  // The originator's handling binds the recipient (Protocol art. 10 (2)): always shown.
  const handling = handlingInstruction(claims.handling.code, claims.handling.restrictions);
  const withheld = delivery.withheld.length === 0 ? '' : `  [withheld: ${delivery.withheld.map((w) => w.kind).join(', ')}]`;
  const marked =
    delivery.marking === undefined ? '' : `  [MARKED: signing key ${delivery.marking.kid} compromised since ${delivery.marking.compromisedSince.toISOString()}; do not rely on it]`;
  // A follow-up says so first, from its signed lifecycle claim: "UPDATE of …", "WITHDRAWN …".
  const followUp = followUpHeadline(claims);
  const line = `#${delivery.cursor}  ${delivery.bulletinId}  ${claims.category}  TLP:${claims.handling.tlp}  "${claims.content.title}"  {${handling}}${withheld}${marked}${statusNote(delivery.status)}  (${delivery.reason})`;
  return followUp === undefined ? line : `${followUp}  ${line}`;
}

/** A notice that a delivery received earlier must no longer be relied on. */
export function markingLine(marking: MarkedDelivery): string {
  const cursor = marking.cursor === undefined ? '' : `#${marking.cursor} `;
  const by = marking.source === 'hub' ? `the hub${marking.auditPosition === undefined ? '' : ` (audit position ${marking.auditPosition})`}` : 'this node';
  return (
    `MARKED ${cursor}${marking.bulletinId}: signing key ${marking.kid} revoked at ${marking.revokedAt.toISOString()}, compromised since ` +
    `${marking.compromisedSince.toISOString()}; do not rely on this bulletin (marked by ${by}: ${marking.reason})`
  );
}

function markingJson(marking: MarkedDelivery): string {
  return JSON.stringify({
    marked: true,
    cursor: marking.cursor?.toString(),
    bulletinId: marking.bulletinId,
    kid: marking.kid,
    compromisedSince: marking.compromisedSince.toISOString(),
    revokedAt: marking.revokedAt.toISOString(),
    reason: marking.reason,
    source: marking.source,
    auditPosition: marking.auditPosition?.toString(),
  });
}

function deliveryJson(delivery: VerifiedDelivery): string {
  return JSON.stringify({
    cursor: delivery.cursor.toString(),
    bulletinId: delivery.bulletinId,
    issuer: delivery.claims.issuer,
    category: delivery.claims.category,
    handling: delivery.claims.handling,
    content: contentToJson(delivery.claims.content),
    issuedAt: delivery.claims.issuedAt,
    expiresAt: delivery.claims.expiresAt,
    hubTimeMs: delivery.receipt.hub_time_ms,
    reason: delivery.reason,
    policyVersion: delivery.policyVersion,
    handlingInstruction: handlingInstruction(delivery.claims.handling.code, delivery.claims.handling.restrictions),
    withheld: delivery.withheld,
    agreements: delivery.agreements,
    ...(delivery.claims.lifecycle === undefined ? {} : { lifecycle: delivery.claims.lifecycle }),
    status: { state: delivery.status.state, ...(delivery.status.latest === undefined ? {} : { latest: delivery.status.latest }) },
    ...(delivery.marking === undefined
      ? {}
      : { marking: { kid: delivery.marking.kid, compromisedSince: delivery.marking.compromisedSince.toISOString(), reason: delivery.marking.reason, source: delivery.marking.source } }),
  });
}

export function rejectionLine(rejection: RejectedDelivery): string {
  return `REJECTED #${rejection.cursor} ${rejection.bulletinId}: ${rejection.code}: ${rejection.reason} (kept as evidence, not acknowledged)`;
}
