/**
 * The `corridor` command line. Every command has `--help`; success exits 0, failure exits
 * non-zero with one line on stderr saying why.
 */
import { Command, Option } from 'commander';
import { readHubConfig } from '../../hub/config.js';
import { startHub } from '../../hub/hub.js';
import { createLogger } from '../../infra/log.js';
import { registerAgreementCommands } from './agreement.js';
import { AUDIT_KINDS, auditLog } from './audit.js';
import { registerAuditTools } from './audit-tools.js';
import { describeFailure, homeFrom, untilSignal } from './common.js';
import { registerDemoCommand } from './demo.js';
import { registerKeyCommands } from './key.js';
import { registerNodeCommands } from './node.js';
import { registerNodeAuditCommands } from './node-audit.js';
import { pkiInit } from './pki.js';
import { registerPolicyCommands } from './policy.js';
import { registerRequestCommands } from './request.js';

export function buildProgram(): Command {
  const program = new Command('corridor')
    .description('Corridor: a secure regional information-exchange hub for states on shared migrant-smuggling routes')
    .version('0.1.0')
    .showHelpAfterError()
    .addOption(new Option('--home <dir>', 'state directory (keys, certificates, embedded database)').env('CORRIDOR_HOME'));

  const pki = program.command('pki').description('the development PKI (regional CA, certificates, signing keys)');
  pki
    .command('init')
    .description('create the regional CA and certificates for the hub, every member, agency and operator, plus member signing keys; idempotent')
    .option('--region <file>', 'region file (JSON) to use; default: the region already in the state directory, else the demo region')
    .option('--hub-host <host...>', 'extra DNS names or IP addresses for the hub certificate')
    .option('--validity-days <days>', 'validity of leaf certificates in days', '90')
    .action(async (options: { region?: string; hubHost?: string[]; validityDays?: string }) => {
      const home = homeFrom(program.opts());
      const result = await pkiInit({ home, ...options });
      const { region } = result;
      console.log(
        `${region.name}: ${count(region.members.length, 'member')}, ${count(region.agencies.length, 'agency', 'agencies')}, ${count(region.operators.length, 'operator')}; ` +
          `${result.created} files created, ${result.reused} reused in ${home}`,
      );
    });

  const hub = program.command('hub').description('the regional hub');
  hub
    .command('start')
    .description('run the hub (embedded PostgreSQL unless DATABASE_URL is set) until SIGINT or SIGTERM')
    .option('--config <file>', 'configuration file (JSON); environment variables override it', process.env['CORRIDOR_CONFIG'])
    .option('--listen <host:port>', 'gRPC listen address (CORRIDOR_HUB_LISTEN)')
    .action(async (options: { config?: string; listen?: string }) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ...homeEnv(program) };
      if (options.listen !== undefined) env['CORRIDOR_HUB_LISTEN'] = options.listen;
      const config = await readHubConfig(env, options.config);
      const log = createLogger({ name: 'hub', level: config.logLevel });
      const running = await startHub(config, log);
      // A line that scripts (and the tests) can wait for.
      console.error(`corridor hub listening on ${config.listen.replace(/:\d+$/, '')}:${running.port}`);
      await untilSignal();
      await running.close();
    });

  registerNodeCommands(program);
  registerNodeAuditCommands(program);

  const audit = program.command('audit').description('the exchange record (operators)');
  audit
    .command('log')
    .description('list exchange events: publications, refusals, delivery decisions, acknowledgements, agreement and registry changes')
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR); default: the first operator of the region')
    .addOption(new Option('--kind <kind...>', 'only these kinds').choices(AUDIT_KINDS))
    .option('--bulletin <id>', 'only events about this bulletin')
    .option('--agency <id>', 'only events about this agency')
    .option('--actor <label>', 'only events caused by this principal, e.g. member:IDN')
    .option('--code <code>', 'only events with this reason code, e.g. JWS_BAD_SIGNATURE')
    .option('--since <time>', 'from this time (ISO 8601)')
    .option('--until <time>', 'before this time (ISO 8601)')
    .option('--after <position>', 'events after this audit position')
    .option('--limit <n>', 'at most this many events', '100')
    .option('--json', 'one JSON object per line')
    .action(async (options: Parameters<typeof auditLog>[0]) => {
      await auditLog({ ...options, ...homeOption(program) }, (line) => console.log(line));
    });
  registerAuditTools(audit, program);

  registerAgreementCommands(program);
  registerKeyCommands(program);
  registerPolicyCommands(program);
  registerRequestCommands(program);
  registerDemoCommand(program);
  return program;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function homeEnv(program: Command): NodeJS.ProcessEnv {
  const home = program.opts<{ home?: string }>().home;
  return home === undefined ? {} : { CORRIDOR_HOME: home };
}

function homeOption(program: Command): { home?: string } {
  const home = program.opts<{ home?: string }>().home;
  return home === undefined ? {} : { home };
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync([...argv]);
    // A command that finished but wants a non-zero status (a refused publication, an audit alarm) says so here.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    // commander has already printed help, version or a usage error.
    if (typeof error === 'object' && error !== null && 'exitCode' in error && typeof error.exitCode === 'number' && 'code' in error && String(error.code).startsWith('commander.')) {
      return error.exitCode;
    }
    process.stderr.write(`corridor: ${describeFailure(error)}\n`);
    return 1;
  }
}
