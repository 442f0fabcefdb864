/** `corridor node …`: run a member node, publish through it, follow a submission, subscribe as an agency. */
import type { Command } from 'commander';
import { asAgencyId } from '../../core/ids.js';
import { createLogger } from '../../infra/log.js';
import { startAgencyClient } from '../agency.js';
import type { Submission } from '../outbox.js';
import { readNodeConfig } from '../config.js';
import { getSubmission, isNodeListening, publishDirect, startNode, submitToNode } from '../node.js';
import { handlingInstruction } from '../../core/policy.js';
import type { MarkedDelivery, RejectedDelivery, VerifiedDelivery } from '../subscriber.js';
import { homeFrom, hubAddressFrom, nonEmpty, readInput, untilSignal } from './common.js';

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
    .description('publish a bulletin draft (JSON, "-" for stdin) through the running node, or sign and publish it directly when none runs')
    .argument('<file>', 'the draft: category, handling, content, optional jti and retention_days')
    .requiredOption('--member <id>', 'the publishing member state', process.env['CORRIDOR_MEMBER'])
    .option('--hub <host:port>', 'hub address, for --direct (CORRIDOR_HUB_ADDRESS)')
    .option('--direct', 'sign and publish in this process, without the node (nothing is stored or retried)')
    .option('--wait', 'through the node: wait until the hub has answered')
    .action(async (file: string, options: { member: string; hub?: string; direct?: boolean; wait?: boolean }) => {
      const draft = await readInput(file);
      const config = await readNodeConfig(process.env, { member: options.member, home: home().home, hubAddress: options.hub });
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
  return `#${delivery.cursor}  ${delivery.bulletinId}  ${claims.category}  TLP:${claims.handling.tlp}  "${claims.content.title}"  {${handling}}${withheld}${marked}  (${delivery.reason})`;
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
    content: delivery.claims.content,
    issuedAt: delivery.claims.issuedAt,
    expiresAt: delivery.claims.expiresAt,
    hubTimeMs: delivery.receipt.hub_time_ms,
    reason: delivery.reason,
    policyVersion: delivery.policyVersion,
    handlingInstruction: handlingInstruction(delivery.claims.handling.code, delivery.claims.handling.restrictions),
    withheld: delivery.withheld,
    agreements: delivery.agreements,
    ...(delivery.marking === undefined
      ? {}
      : { marking: { kid: delivery.marking.kid, compromisedSince: delivery.marking.compromisedSince.toISOString(), reason: delivery.marking.reason, source: delivery.marking.source } }),
  });
}

export function rejectionLine(rejection: RejectedDelivery): string {
  return `REJECTED #${rejection.cursor} ${rejection.bulletinId}: ${rejection.code}: ${rejection.reason} (kept as evidence, not acknowledged)`;
}
