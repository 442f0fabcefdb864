/**
 * The member's signing keys on the node: the active key (`signing-key.jwk`) and, while a
 * rotation is pending, the next key (`signing-key.next.jwk`), both private JWK files of mode 0600.
 *
 * Rotation: {@link rotateSigningKey} generates the next key, signs a rotation statement with the
 * active key and proposes it to the hub (pending). The old key stays the one the node signs with
 * until an operator has approved the new one; then {@link SigningKeyring.sync} sees the next key
 * active in the directory and renames its file over the active one (an atomic replace), so the
 * node always signs with the key the directory holds active. A rejected next key is replaced by a
 * fresh one at the next `rotate`.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { link, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import type { Clock } from '../core/clock.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail, isCorridorError } from '../core/errors.js';
import type { MemberId } from '../core/ids.js';
import { importSigningKey, jwkThumbprint } from '../core/jws.js';
import type { SigningKey } from '../core/jws.js';
import { isKeyState } from '../core/key-lifecycle.js';
import type { KeyState } from '../core/key-lifecycle.js';
import { signRotationStatement } from '../core/key-statement.js';
import { DirectoryService, GetKeyDirectoryRequestSchema, ProposeKeyRequestSchema } from '../gen/corridor/v1/directory_pb.js';
import type { MemberKey } from '../gen/corridor/v1/directory_pb.js';
import { nextSigningKeyFile } from '../infra/home.js';
import { readPrivateJwkFile } from '../infra/keys.js';
import type { Logger } from '../infra/log.js';
import { callErrorToCorridorError } from './hub-errors.js';
import type { HubConnection } from './hub-client.js';

const generateKeyPairAsync = promisify(generateKeyPair);
const PRIVATE_FILE_MODE = 0o600;

/** The active and the next key file of a member. */
export interface SigningKeyFiles {
  readonly active: string;
  readonly next: string;
}

export function signingKeyFiles(activeFile: string): SigningKeyFiles {
  return { active: activeFile, next: nextSigningKeyFile(activeFile) };
}

/** A signing key that can change while the node runs: what the publisher signs with. */
export interface SigningKeySource {
  /** The key to sign with now. */
  current(): SigningKey;
  /**
   * Checks the directory: when the next key is active there, makes it the current one.
   * Returns true when the current key changed.
   */
  sync(): Promise<boolean>;
}

/** The key of a private JWK file, or undefined when there is no such file. */
async function readKeyIfPresent(file: string): Promise<SigningKey | undefined> {
  try {
    return await importSigningKey(await readPrivateJwkFile(file));
  } catch (error) {
    if (isCorridorError(error) && error.code === 'STATE_MISSING') return undefined;
    throw error;
  }
}

/** The states the hub's directory gives a member's keys. */
export type KeyStates = ReadonlyMap<string, { readonly state: KeyState; readonly entry: MemberKey }>;

/** The member's keys in the hub's directory, by kid. */
export async function memberKeyStates(hub: HubConnection, member: MemberId, deadlineMs = 10_000): Promise<KeyStates> {
  let keys: MemberKey[];
  try {
    keys = (await hub.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, { memberId: member }), { deadlineMs }))
      .memberKeys;
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub key directory');
  }
  const states = new Map<string, { state: KeyState; entry: MemberKey }>();
  for (const entry of keys) {
    if (entry.memberId === member && isKeyState(entry.status)) states.set(entry.kid, { state: entry.status, entry });
  }
  return states;
}

/**
 * The node's signing keys, from their files. `states` asks the hub's directory, for
 * {@link SigningKeySource.sync}.
 */
export class SigningKeyring implements SigningKeySource {
  readonly #files: SigningKeyFiles;
  readonly #states: () => Promise<KeyStates>;
  readonly #log: Logger;
  #current: SigningKey;
  #syncing: Promise<boolean> | undefined;

  private constructor(files: SigningKeyFiles, current: SigningKey, states: () => Promise<KeyStates>, log: Logger) {
    this.#files = files;
    this.#current = current;
    this.#states = states;
    this.#log = log;
  }

  /** Reads the active key file. @throws CorridorError `STATE_MISSING` or `CONFIG_INVALID` as `readPrivateJwkFile`. */
  static async load(files: SigningKeyFiles, states: () => Promise<KeyStates>, log: Logger): Promise<SigningKeyring> {
    return new SigningKeyring(files, await importSigningKey(await readPrivateJwkFile(files.active)), states, log);
  }

  current(): SigningKey {
    return this.#current;
  }

  sync(): Promise<boolean> {
    this.#syncing ??= this.#sync().finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  async #sync(): Promise<boolean> {
    const next = await readKeyIfPresent(this.#files.next);
    if (next === undefined) {
      // Another process (the CLI, another node run) may have promoted it meanwhile.
      const active = await importSigningKey(await readPrivateJwkFile(this.#files.active));
      const changed = active.kid !== this.#current.kid;
      this.#current = active;
      return changed;
    }
    const state = (await this.#states()).get(next.kid)?.state;
    if (state !== 'active') {
      if (state === 'rejected') this.#log.warn({ kid: next.kid }, 'the proposed signing key was rejected; `corridor node key rotate` proposes a new one');
      return false;
    }
    await promoteNextKey(this.#files);
    const previous = this.#current.kid;
    this.#current = next;
    this.#log.info({ kid: next.kid, previous }, 'the next signing key is active: signing with it from now on');
    return true;
  }
}

/** Makes the next key file the active one, in one atomic rename; the old private key is gone. */
export async function promoteNextKey(files: SigningKeyFiles): Promise<void> {
  try {
    await rename(files.next, files.active);
  } catch (cause) {
    // Promoted already by another process.
    if (cause instanceof Error && 'code' in cause && cause.code === 'ENOENT') return;
    throw new CorridorError('INTERNAL', `could not make ${files.next} the active signing key`, { cause });
  }
}

/**
 * Generates an Ed25519 key into `file`, which must not exist: written to a temporary file with
 * mode 0600 first, flushed, then linked into place (which fails rather than replace a file).
 */
async function generateKeyFile(file: string): Promise<SigningKey> {
  const { privateKey } = await generateKeyPairAsync('ed25519');
  const exported = privateKey.export({ format: 'jwk' });
  if (typeof exported.x !== 'string' || typeof exported.d !== 'string') fail('INTERNAL', 'Node did not export an Ed25519 JWK');
  const kid = await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: exported.x });
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: exported.x, d: exported.d, kid, alg: 'Ed25519', use: 'sig' };
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', PRIVATE_FILE_MODE);
    try {
      await handle.writeFile(`${JSON.stringify(jwk, null, 2)}\n`);
      await handle.chmod(PRIVATE_FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temporary, file);
  } catch (cause) {
    if (cause instanceof Error && 'code' in cause && cause.code === 'EEXIST') fail('CONFIG_INVALID', `${file} exists already; it is a pending next key`);
    throw new CorridorError('INTERNAL', `could not write ${file}`, { cause });
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  return importSigningKey(await readPrivateJwkFile(file));
}

/** What {@link rotateSigningKey} did. */
export type RotationOutcome =
  | { readonly kind: 'proposed'; readonly kid: string; readonly auditPosition: bigint }
  | { readonly kind: 'pending'; readonly kid: string }
  | { readonly kind: 'promoted'; readonly kid: string };

/**
 * Rotates the member's signing key, idempotently:
 * - no next key: generate one, sign a rotation statement with the active key, propose it;
 * - a next key the hub holds pending: nothing to do (an operator must approve or reject it);
 * - a next key the hub holds active: it is promoted to the active file;
 * - a next key the hub rejected, or revoked: replaced by a fresh one, proposed;
 * - a next key the hub does not know (a proposal that did not reach it): proposed again.
 */
export async function rotateSigningKey(hub: HubConnection, member: MemberId, files: SigningKeyFiles, clock: Clock, log: Logger): Promise<RotationOutcome> {
  const states = await memberKeyStates(hub, member);
  let next = await readKeyIfPresent(files.next);
  if (next !== undefined) {
    const state = states.get(next.kid)?.state;
    if (state === 'pending') return { kind: 'pending', kid: next.kid };
    if (state === 'active') {
      await promoteNextKey(files);
      return { kind: 'promoted', kid: next.kid };
    }
    if (state !== undefined) {
      log.info({ kid: next.kid, state }, 'the previous next key cannot become active; replacing it');
      await unlink(files.next);
      next = undefined;
    }
  }
  const current = await importSigningKey(await readPrivateJwkFile(files.active));
  const currentState = states.get(current.kid)?.state;
  if (currentState !== 'active') {
    fail(
      currentState === 'revoked' ? 'KEY_REVOKED' : currentState === 'retired' ? 'KEY_RETIRED' : 'JWS_UNKNOWN_KEY',
      `the active key file ${files.active} holds key ${current.kid}, which the hub holds ${currentState ?? 'unknown'}; a rotation must be signed with the member's active key`,
    );
  }
  next ??= await generateKeyFile(files.next);
  const statement = await signRotationStatement(current, member, { jwk: next.publicJwk, alg: next.alg }, epochSeconds(clock.now()));
  try {
    const response = await hub.directory.unary(DirectoryService.method.proposeKey, create(ProposeKeyRequestSchema, { statement }), { deadlineMs: 15_000 });
    return { kind: 'proposed', kid: next.kid, auditPosition: response.auditPosition };
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}
