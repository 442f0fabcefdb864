/**
 * `corridor key …` (operators): the key directory's lifecycle — list the keys, approve or reject
 * a member's proposed key, revoke a key (optionally as compromised from a date) — each change a
 * statement signed with the operator's certificate key. `corridor node key …` (a member's node):
 * rotate the member's signing key, and see where the rotation stands.
 */
import type { Command } from 'commander';
import { systemClock } from '../../core/clock.js';
import { asMemberId } from '../../core/ids.js';
import { createLogger } from '../../infra/log.js';
import { readNodeConfig } from '../config.js';
import { changeKeyStateAtHub, keyJson, keyLine, listDirectoryKeys } from '../key-admin.js';
import type { KeyChangeRequest } from '../key-admin.js';
import { SigningKeyring, memberKeyStates, rotateSigningKey, signingKeyFiles } from '../signing-keys.js';
import { connectAsMember, connectAsOperator } from './agreement.js';
import type { HubOptions, OperatorOptions } from './agreement.js';
import { parseTime } from './common.js';

type Print = (line: string) => void;

/** Signs and sends one change as the operator; prints every key it moved. */
export async function keyChangeCommand(options: OperatorOptions, change: KeyChangeRequest, print: Print): Promise<void> {
  const { hub, id, tls } = await connectAsOperator(options);
  try {
    const response = await changeKeyStateAtHub(hub, { id, tls }, change, systemClock);
    for (const key of response.keys) print(keyLine(key));
    if (change.action === 'revoke' && change.compromisedSince !== undefined) {
      print(`${response.bulletinsMarked} bulletin(s) signed with ${change.kid} and logged since ${change.compromisedSince.toISOString()} marked; their recipients are notified`);
    }
    print(`recorded at audit position ${response.auditPosition}`);
  } finally {
    hub.close();
  }
}

export async function listKeysCommand(options: OperatorOptions & { member?: string; json?: boolean }, print: Print): Promise<number> {
  const { hub } = await connectAsOperator(options);
  try {
    const keys = await listDirectoryKeys(hub, options.member === undefined ? undefined : asMemberId(options.member));
    for (const key of keys) print(options.json === true ? keyJson(key) : keyLine(key));
    if (keys.length === 0 && options.json !== true) print('no keys');
    return keys.length;
  } finally {
    hub.close();
  }
}

/** `corridor node key rotate`: generate, sign and propose the next key (idempotent: see `rotateSigningKey`). */
export async function rotateCommand(member: string, options: HubOptions, print: Print): Promise<void> {
  const config = await readNodeConfig(process.env, { member: asMemberId(member), home: options.home, hubAddress: options.hub });
  const hub = await connectAsMember(member, options);
  try {
    const log = createLogger({ name: `node-${config.member}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
    const outcome = await rotateSigningKey(hub, config.member, signingKeyFiles(config.signingKeyFile), systemClock, log);
    switch (outcome.kind) {
      case 'proposed':
        print(`proposed signing key ${outcome.kid} for ${config.member}: pending (audit position ${outcome.auditPosition})`);
        print(`the node keeps signing with its active key until an operator approves it: corridor key approve --member ${config.member} --kid ${outcome.kid}`);
        return;
      case 'pending':
        print(`signing key ${outcome.kid} for ${config.member} is already proposed and pending; an operator approves it with: corridor key approve --member ${config.member} --kid ${outcome.kid}`);
        return;
      case 'promoted':
        print(`signing key ${outcome.kid} for ${config.member} is active; the node signs with it from now on`);
        return;
    }
  } finally {
    hub.close();
  }
}

/** `corridor node key status`: the active and next key files and what the hub says of them; promotes an approved next key. */
export async function keyStatusCommand(member: string, options: HubOptions, print: Print): Promise<void> {
  const config = await readNodeConfig(process.env, { member: asMemberId(member), home: options.home, hubAddress: options.hub });
  const hub = await connectAsMember(member, options);
  try {
    const log = createLogger({ name: `node-${config.member}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
    const files = signingKeyFiles(config.signingKeyFile);
    const states = () => memberKeyStates(hub, config.member);
    const keyring = await SigningKeyring.load(files, states, log);
    if (await keyring.sync()) print(`the approved next key is now the active key file`);
    const known = await states();
    const active = keyring.current();
    print(`signing with ${active.kid} (${files.active}): ${known.get(active.kid)?.state ?? 'unknown to the hub'}`);
    for (const [kid, { state }] of known) {
      if (kid !== active.kid && state === 'pending') print(`next key ${kid} (${files.next}): pending; an operator approves it with: corridor key approve --member ${config.member} --kid ${kid}`);
    }
  } finally {
    hub.close();
  }
}

export function registerKeyCommands(program: Command): void {
  const home = (): HubOptions => {
    const value = program.opts<{ home?: string }>().home;
    return value === undefined ? {} : { home: value };
  };
  const hubFlag = ['--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)'] as const;
  const operatorFlag = ['--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR); default: the first operator of the region'] as const;
  const print = (line: string): void => console.log(line);

  const key = program
    .command('key')
    .description('the key directory: member signing keys, pending → active → retired → revoked; every change signed by an operator and recorded');

  key
    .command('list')
    .description('every member signing key with its state and the times of its transitions')
    .option('--member <id>', 'only this member state')
    .option('--json', 'one JSON object per line')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (options: OperatorOptions & { member?: string; json?: boolean }) => {
      await listKeysCommand({ ...options, ...home() }, print);
    });

  key
    .command('approve')
    .description("approve a member's pending key: it becomes active and the key that announced it is retired")
    .requiredOption('--member <id>', 'the member state')
    .requiredOption('--kid <kid>', 'the pending key')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (options: OperatorOptions & { member: string; kid: string }) => {
      await keyChangeCommand({ ...options, ...home() }, { action: 'approve', member: options.member, kid: options.kid }, print);
    });

  key
    .command('reject')
    .description("reject a member's pending key: it never signs anything")
    .requiredOption('--member <id>', 'the member state')
    .requiredOption('--kid <kid>', 'the pending key')
    .requiredOption('--reason <text>', 'why (signed and recorded)')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (options: OperatorOptions & { member: string; kid: string; reason: string }) => {
      await keyChangeCommand({ ...options, ...home() }, { action: 'reject', member: options.member, kid: options.kid, reason: options.reason }, print);
    });

  key
    .command('revoke')
    .description('revoke an active or retired key; with --compromised-since, every bulletin it signed that was logged from then on is marked and its recipients notified')
    .requiredOption('--member <id>', 'the member state')
    .requiredOption('--kid <kid>', 'the key')
    .requiredOption('--reason <text>', 'why (signed and recorded)')
    .option('--compromised-since <time>', 'the key is compromised from this hub time (ISO 8601)')
    .option(...hubFlag)
    .option(...operatorFlag)
    .action(async (options: OperatorOptions & { member: string; kid: string; reason: string; compromisedSince?: string }) => {
      const since = options.compromisedSince === undefined ? undefined : new Date(parseTime(options.compromisedSince, '--compromised-since'));
      await keyChangeCommand(
        { ...options, ...home() },
        { action: 'revoke', member: options.member, kid: options.kid, reason: options.reason, ...(since === undefined ? {} : { compromisedSince: since }) },
        print,
      );
    });

  const node = program.commands.find((command) => command.name() === 'node');
  if (node === undefined) throw new Error('register the node commands before the key commands');
  const nodeKey = node.command('key').description("the member's signing key on its node: rotate it, see where a rotation stands");
  nodeKey
    .command('rotate')
    .description('generate the next signing key, sign a rotation statement with the active key and propose it to the hub (pending until an operator approves it)')
    .requiredOption('--member <id>', 'the member state', process.env['CORRIDOR_MEMBER'])
    .option(...hubFlag)
    .action(async (options: HubOptions & { member: string }) => {
      await rotateCommand(options.member, { ...options, ...home() }, print);
    });
  nodeKey
    .command('status')
    .description('the key the node signs with and a pending next key, as the hub holds them; makes an approved next key the active one')
    .requiredOption('--member <id>', 'the member state', process.env['CORRIDOR_MEMBER'])
    .option(...hubFlag)
    .action(async (options: HubOptions & { member: string }) => {
      await keyStatusCommand(options.member, { ...options, ...home() }, print);
    });
}
