/**
 * The node's trust store: which member signing keys and which hub receipt keys it accepts, and
 * what it knows of each member key's lifecycle.
 *
 * Keys come from the hub's key directory, but the hub is not trusted to move them:
 *
 * - The first time the directory names keys for a member, the node pins them to that member for
 *   good (trust on first sight). If the hub later names a pinned kid for another member, that is
 *   refused and logged as an error: a compromised hub could otherwise make one state's bulletins
 *   pass as another's. Each kid must be the RFC 7638 thumbprint of its key (checked by
 *   `importVerificationKey`), so a directory entry cannot smuggle in a different key under a
 *   known kid.
 * - After that, a new key of the member is trusted only with its **rotation statement**, which
 *   the node verifies itself: signed by a key it has pinned for that member (the statement's kid
 *   only selects among them; the algorithm is the pinned one), for that member, announcing exactly
 *   this key, and signed while that key was still entitled to (not retired, revoked or
 *   compromised when the rotation was proposed). Rotations are followed in chains (A announced B,
 *   B announced C) within one refresh. Pending and rejected keys are never pinned.
 * - The directory's dates (activated, retired, revoked, compromised since) are recorded once per
 *   key and never changed afterwards: a directory can narrow what the node trusts, never widen
 *   it again. A signature is judged at the bulletin's logged hub time against them
 *   (`judgeKeyAt`): a revoked key is dropped from trust as of its revocation.
 *
 * Attacker-controlled input: every directory entry (the hub may be compromised), every rotation
 * statement in it, and every kid asked about (it comes from a delivery's JWS header).
 */
import { create } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { isMemberId, printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { importVerificationKey, isSigningAlgorithm } from '../core/jws.js';
import type { SigningAlgorithm, VerificationKey } from '../core/jws.js';
import { isKeyState, judgeKeyAt } from '../core/key-lifecycle.js';
import type { KeyCompromise, KeyState, KeyValidity } from '../core/key-lifecycle.js';
import { readRotationStatement, verifyRotationStatement } from '../core/key-statement.js';
import { verifyReceipt } from '../core/receipt.js';
import type { ReceiptClaims } from '../core/receipt.js';
import { publicJwkSchema } from '../core/region.js';
import type { PublicJwk } from '../core/region.js';
import { parseStrictJson } from '../core/strict-json.js';
import type { TrustedKey } from '../core/verify-bulletin.js';
import { DirectoryService, GetKeyDirectoryRequestSchema } from '../gen/corridor/v1/directory_pb.js';
import type { GetKeyDirectoryResponse, MemberKey } from '../gen/corridor/v1/directory_pb.js';
import type { Logger } from '../infra/log.js';
import type { NodeDatabase } from './db/schema.js';
import { callErrorToCorridorError } from './hub-errors.js';
import type { HubConnection } from './hub-client.js';

/** How a pin was accepted. */
export type PinOrigin =
  | { readonly acceptedBy: 'first-sight' }
  /** A rotation statement, exactly as the member signed it, verified with the pinned key `signedByKid`. */
  | { readonly acceptedBy: 'rotation'; readonly rotationStatement: Uint8Array; readonly signedByKid: string };

/** A member signing key as pinned: the public JWK (kty, crv, x only), its member and algorithm, and what is known of its lifecycle. */
export type PinnedMemberKey = {
  readonly kid: string;
  readonly member: MemberId;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
  readonly validity: KeyValidity;
} & PinOrigin;

/** A hub receipt key as pinned. */
export interface PinnedHubKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
}

/**
 * Where pins are kept. Pins are insert-only: pinning a kid that is already pinned returns the
 * existing pin; a key's recorded times are written once and never changed.
 */
export interface PinStore {
  findMemberKey(kid: string): Promise<PinnedMemberKey | undefined>;
  /** Every key pinned for `member`. */
  memberKeys(member: MemberId): Promise<PinnedMemberKey[]>;
  /** Pins `key` unless its kid is pinned already; returns the pin in force, which may differ from `key`. */
  pinMemberKey(key: PinnedMemberKey, at: Date): Promise<PinnedMemberKey>;
  /** Records the times of `validity` that are not recorded yet for `kid`; true when it recorded any. */
  recordValidity(kid: string, validity: KeyValidity, at: Date): Promise<boolean>;
  /** Pinned keys known to be compromised. */
  compromisedKeys(): Promise<PinnedMemberKey[]>;
  hubKeys(): Promise<PinnedHubKey[]>;
  pinHubKey(key: PinnedHubKey, at: Date): Promise<PinnedHubKey>;
}

/** Fetches the hub's key directory. */
export type KeyDirectorySource = () => Promise<GetKeyDirectoryResponse>;

/** The key directory over a hub connection; a failed call becomes a coded error (`HUB_UNAVAILABLE` when transient). */
export function hubKeyDirectory(hub: HubConnection, deadlineMs = 10_000): KeyDirectorySource {
  return async () => {
    try {
      return await hub.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, {}), { deadlineMs });
    } catch (error) {
      throw callErrorToCorridorError(error, 'the hub key directory');
    }
  };
}

/** The keys a node trusts, each pinned the first time it is seen or through a verified rotation. */
export interface TrustStore {
  /**
   * The pinned key `kid` of `member`, judged at `loggedAt` (default: now), fetching the directory
   * once if the kid is unknown; undefined if the hub does not know it either. Fits
   * `TrustedKeyLookup` of `verifyBulletin`: a key revoked as compromised from a time at or before
   * `loggedAt` comes back with its compromise.
   *
   * @throws CorridorError `JWS_UNKNOWN_KEY` if the kid is pinned to another member;
   *   `KEY_PENDING`, `KEY_RETIRED` or `KEY_REVOKED` if it was not active at `loggedAt`;
   *   `HUB_UNAVAILABLE` if the directory had to be fetched and could not be.
   */
  lookup(member: MemberId, kid: string, loggedAt?: Date): Promise<TrustedKey | undefined>;
  /** Verifies a hub receipt against the pinned hub keys (fetching the directory once for an unknown kid). */
  verifyReceipt(bytes: Uint8Array): Promise<ReceiptClaims>;
  /** The pinned hub key `kid` (fetching the directory once for an unknown kid); it signs receipts and Key Binding JWTs. */
  hubKey(kid: string): Promise<VerificationKey | undefined>;
  /** Fetches the directory: pins what it may, and records what it says of pinned keys' lifecycles. */
  refresh(): Promise<void>;
  /** The pinned keys known to be compromised, and since when. */
  compromisedKeys(): Promise<KeyCompromise[]>;
}

/** What {@link createTrustStore} needs. */
export interface TrustStoreDeps {
  readonly pins: PinStore;
  readonly directory: KeyDirectorySource;
  readonly clock: Clock;
  readonly log: Logger;
}

interface CachedMemberKey {
  readonly member: MemberId;
  readonly key: VerificationKey;
  readonly validity: KeyValidity;
}

/** A member key as the directory lists it, validated. */
interface DirectoryKey {
  readonly kid: string;
  readonly member: MemberId;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
  readonly state: KeyState;
  readonly addedAt: Date | undefined;
  readonly validity: KeyValidity;
  readonly rotationStatement: Uint8Array | undefined;
}

/** A trust store over `pins`, filled from `directory` on demand; imported keys are cached in memory. */
export function createTrustStore(deps: TrustStoreDeps): TrustStore {
  const { pins, clock, log } = deps;
  // Imported keys by kid. Importing is async WebCrypto work; cleared after each refresh, which
  // may have recorded a key's retirement or revocation.
  const memberKeys = new Map<string, CachedMemberKey>();
  const hubKeys = new Map<string, VerificationKey>();
  let hubKeysLoaded = false;
  let inflight: Promise<void> | undefined;

  const refresh = (): Promise<void> => {
    inflight ??= pinDirectory().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };

  /**
   * A refresh already under way may have fetched the directory before the key we need was
   * added; so one that was in flight when we asked is followed by one of our own if needed.
   */
  const refreshFor = async <T>(find: () => Promise<T | undefined>): Promise<T | undefined> => {
    const joined = inflight !== undefined;
    await refresh();
    const found = await find();
    if (found !== undefined || !joined) return found;
    await refresh();
    return find();
  };

  const cachedMemberKey = async (kid: string): Promise<CachedMemberKey | undefined> => {
    const cached = memberKeys.get(kid);
    if (cached !== undefined) return cached;
    const pinned = await pins.findMemberKey(kid);
    if (pinned === undefined) return undefined;
    const entry = { member: pinned.member, key: await importVerificationKey({ ...pinned.jwk, kid: pinned.kid }, pinned.alg), validity: pinned.validity };
    memberKeys.set(kid, entry);
    return entry;
  };

  const loadHubKeys = async (): Promise<readonly VerificationKey[]> => {
    if (!hubKeysLoaded) {
      for (const pinned of await pins.hubKeys()) {
        if (!hubKeys.has(pinned.kid)) hubKeys.set(pinned.kid, await importVerificationKey({ ...pinned.jwk, kid: pinned.kid }, pinned.alg));
      }
      hubKeysLoaded = true;
    }
    return [...hubKeys.values()];
  };

  return {
    async lookup(member, kid, loggedAt) {
      const entry = (await cachedMemberKey(kid)) ?? (await refreshFor(() => cachedMemberKey(kid)));
      if (entry === undefined) return undefined;
      if (entry.member !== member) {
        log.error({ kid: printable(kid, 64), pinnedTo: entry.member, claimedFor: member }, 'a key pinned to one member was presented for another; refused');
        fail(
          'JWS_UNKNOWN_KEY',
          `kid ${printable(kid, 50)} is pinned to member ${entry.member}; this node never accepts it for member ${member}, whatever the hub's directory says`,
        );
      }
      const verdict = judgeKeyAt(entry.key.kid, entry.validity, loggedAt ?? clock.now());
      return verdict.kind === 'compromised' ? { ...entry.key, compromise: verdict.compromise } : entry.key;
    },

    async verifyReceipt(bytes) {
      try {
        return await verifyReceipt(bytes, await loadHubKeys());
      } catch (error) {
        if (!(error instanceof CorridorError && error.code === 'JWS_UNKNOWN_KEY')) throw error;
      }
      hubKeysLoaded = false;
      await refresh();
      return verifyReceipt(bytes, await loadHubKeys());
    },

    async hubKey(kid) {
      const find = (keys: readonly VerificationKey[]): VerificationKey | undefined => keys.find((key) => key.kid === kid);
      const known = find(await loadHubKeys());
      if (known !== undefined) return known;
      hubKeysLoaded = false;
      await refresh();
      return find(await loadHubKeys());
    },

    refresh: async () => {
      await refresh();
      hubKeysLoaded = false;
    },

    async compromisedKeys() {
      const compromised: KeyCompromise[] = [];
      for (const key of await pins.compromisedKeys()) {
        const { compromisedSince, revokedAt } = key.validity;
        if (compromisedSince !== undefined && revokedAt !== undefined) compromised.push({ kid: key.kid, since: compromisedSince, revokedAt });
      }
      return compromised;
    },
  };

  async function pinDirectory(): Promise<void> {
    const response = await deps.directory();
    const now = clock.now();
    const byMember = new Map<MemberId, DirectoryKey[]>();
    for (const entry of response.memberKeys) {
      const key = await readMemberKey(entry, log);
      if (key === undefined) continue;
      byMember.set(key.member, [...(byMember.get(key.member) ?? []), key]);
    }
    let pinned = 0;
    for (const [member, entries] of byMember) pinned += await pinMember(member, entries, now);
    for (const key of await readHubKeys(response.hubJwksJson, log)) {
      const inForce = await pins.pinHubKey(key, now);
      if (inForce.alg !== key.alg) log.warn({ kid: key.kid, pinnedAlg: inForce.alg, directoryAlg: key.alg }, 'the hub names another algorithm for a pinned receipt key; the pin stands');
    }
    // What was recorded may have narrowed a cached key's validity.
    memberKeys.clear();
    log.debug({ memberKeys: pinned }, 'key directory fetched');
  }

  /** Pins what the directory lists for one member that this node may trust; returns how many keys of it are pinned. */
  async function pinMember(member: MemberId, entries: readonly DirectoryKey[], now: Date): Promise<number> {
    // A pending key signs nothing yet, a rejected one never will: neither is trusted.
    const usable = entries.filter((entry) => entry.state !== 'pending' && entry.state !== 'rejected');
    const pinned = new Map((await pins.memberKeys(member)).map((key) => [key.kid, key]));
    const pin = async (entry: DirectoryKey, origin: PinOrigin): Promise<void> => {
      const inForce = await pins.pinMemberKey({ kid: entry.kid, member, alg: entry.alg, jwk: entry.jwk, validity: entry.validity, ...origin }, now);
      if (inForce.member !== member) {
        log.error({ kid: entry.kid, pinnedTo: inForce.member, directorySays: member }, 'the hub directory names a pinned key for another member; the pin stands');
      } else if (inForce.alg !== entry.alg) {
        log.warn({ kid: entry.kid, pinnedAlg: inForce.alg, directoryAlg: entry.alg }, 'the hub directory names another algorithm for a pinned key; the pin stands');
      } else {
        pinned.set(inForce.kid, inForce);
      }
    };

    if (pinned.size === 0) {
      // Trust on first sight: the keys the directory lists the first time this node sees a
      // member are pinned together, with what the directory says of their lifecycle.
      for (const entry of usable) await pin(entry, { acceptedBy: 'first-sight' });
      return pinned.size;
    }

    // What the directory says of keys already pinned: recorded once, it only ever narrows trust.
    // Recorded before rotations are judged, so a revoked key announces nothing after its revocation.
    for (const entry of usable) {
      const known = pinned.get(entry.kid);
      if (known !== undefined && (await pins.recordValidity(entry.kid, entry.validity, now))) {
        const refreshed = await pins.findMemberKey(entry.kid);
        if (refreshed !== undefined) pinned.set(entry.kid, refreshed);
      }
    }

    // New keys: each only with a rotation statement signed by a key pinned for the member,
    // followed in chains (a key pinned in this pass may have announced the next one).
    let waiting = usable.filter((entry) => !pinned.has(entry.kid));
    for (let progress = true; progress && waiting.length > 0; ) {
      progress = false;
      const next: DirectoryKey[] = [];
      for (const entry of waiting) {
        const elsewhere = await pins.findMemberKey(entry.kid);
        if (elsewhere !== undefined && elsewhere.member !== member) {
          log.error({ kid: entry.kid, pinnedTo: elsewhere.member, directorySays: member }, 'the hub directory names a pinned key for another member; the pin stands');
          continue;
        }
        if (entry.rotationStatement === undefined) {
          log.error(
            { kid: entry.kid, member },
            'the hub directory lists a new key for a member whose keys are already pinned; not trusted without a rollover signed by a pinned key',
          );
          continue;
        }
        const outcome = await checkRotation(member, entry, entry.rotationStatement, pinned);
        if (outcome.kind === 'wait') {
          next.push(entry);
        } else if (outcome.kind === 'refused') {
          log.error(
            { kid: entry.kid, member, code: outcome.error.code, reason: outcome.error.message },
            "the hub directory lists a new key whose rotation statement this node cannot accept; not trusted",
          );
        } else {
          await pin(entry, { acceptedBy: 'rotation', rotationStatement: entry.rotationStatement, signedByKid: outcome.signedBy });
          log.info({ kid: entry.kid, member, signedBy: outcome.signedBy }, 'new member key trusted through its rotation statement');
          progress = true;
        }
      }
      waiting = next;
    }
    for (const entry of waiting) {
      log.error(
        { kid: entry.kid, member },
        'the hub directory lists a new key whose rotation statement is not signed by a key this node trusts for the member; not trusted',
      );
    }
    return pinned.size;
  }

  /**
   * Verifies a rotation statement locally. `wait` when its signing kid is not pinned (yet: it may
   * be later in the chain); never trusts the directory's word for who signed it.
   */
  async function checkRotation(
    member: MemberId,
    entry: DirectoryKey,
    statement: Uint8Array,
    pinned: ReadonlyMap<string, PinnedMemberKey>,
  ): Promise<{ kind: 'wait' } | { kind: 'refused'; error: CorridorError } | { kind: 'accepted'; signedBy: string }> {
    try {
      const jws = readRotationStatement(statement);
      const signer = pinned.get(jws.header.kid);
      if (signer === undefined) return { kind: 'wait' };
      const rotation = await verifyRotationStatement(jws, await importVerificationKey({ ...signer.jwk, kid: signer.kid }, signer.alg), member);
      if (rotation.newKid !== entry.kid || rotation.newKey.x !== entry.jwk.x || rotation.newAlg !== entry.alg) {
        fail('JWS_MALFORMED', `the rotation statement announces key ${rotation.newKid}, not the ${entry.kid} the directory lists with it`);
      }
      // The announcing key must have been entitled to sign then: not retired, revoked or
      // compromised when the rotation was made. The later of its signed iat and the hub's
      // record of the proposal, so neither alone can date it back.
      const proposedAt = new Date(Math.max(rotation.issuedAt * 1000, entry.addedAt?.getTime() ?? 0));
      const verdict = judgeKeyAt(signer.kid, signer.validity, proposedAt);
      if (verdict.kind === 'compromised') {
        fail('KEY_REVOKED', `the rotation was signed with key ${signer.kid}, compromised since ${verdict.compromise.since.toISOString()}`);
      }
      return { kind: 'accepted', signedBy: signer.kid };
    } catch (error) {
      if (!(error instanceof CorridorError)) throw error;
      return { kind: 'refused', error };
    }
  }
}

/** A directory time in milliseconds as a Date; 0 (unset) and impossible values as undefined. */
function directoryTime(ms: bigint): Date | undefined {
  if (ms <= 0n || ms > 8_640_000_000_000_000n) return undefined;
  return new Date(Number(ms));
}

/** Validates one directory entry; an invalid one is logged and skipped, never pinned. */
async function readMemberKey(entry: MemberKey, log: Logger): Promise<DirectoryKey | undefined> {
  const kid = printable(entry.kid, 64);
  try {
    if (!isMemberId(entry.memberId)) fail('JWS_MALFORMED', `member id "${printable(entry.memberId, 20)}" is not a member id`);
    if (!isSigningAlgorithm(entry.alg)) fail('JWS_ALG_NOT_ALLOWED', `algorithm "${printable(entry.alg, 20)}" is not allowed`);
    // A directory from before key lifecycles lists active keys without a status.
    const state = entry.status === '' ? 'active' : entry.status;
    if (!isKeyState(state)) fail('JWS_MALFORMED', `key status "${printable(entry.status, 20)}" is unknown`);
    const jwk = parsePublicJwk(parseStrictJson(entry.jwkJson, 'the directory JWK'));
    // Binds the kid to the key: importVerificationKey refuses a kid that is not the key's thumbprint.
    await importVerificationKey({ ...jwk, kid: entry.kid }, entry.alg);
    const revokedAt = directoryTime(entry.revokedMs);
    return {
      kid: entry.kid,
      member: entry.memberId,
      alg: entry.alg,
      jwk,
      state,
      addedAt: directoryTime(entry.addedMs),
      validity: {
        activatedAt: directoryTime(entry.activatedMs),
        retiredAt: directoryTime(entry.retiredMs),
        revokedAt,
        compromisedSince: revokedAt === undefined ? undefined : directoryTime(entry.compromisedSinceMs),
      },
      rotationStatement: entry.rotationStatement.byteLength === 0 ? undefined : entry.rotationStatement,
    };
  } catch (error) {
    if (!(error instanceof CorridorError)) throw error;
    log.warn({ kid, member: printable(entry.memberId, 20), code: error.code, reason: error.message }, 'directory key refused; not pinned');
    return undefined;
  }
}

/** Parses the hub's receipt JWKS; keys that do not validate are logged and skipped. */
async function readHubKeys(jwksJson: string, log: Logger): Promise<PinnedHubKey[]> {
  if (jwksJson === '') return [];
  let document: unknown;
  try {
    document = parseStrictJson(jwksJson, 'the hub JWKS');
  } catch (error) {
    log.warn({ code: error instanceof CorridorError ? error.code : 'INTERNAL' }, 'the hub JWKS is not valid JSON; no receipt key pinned');
    return [];
  }
  const keys = typeof document === 'object' && document !== null && 'keys' in document && Array.isArray(document.keys) ? document.keys : [];
  const result: PinnedHubKey[] = [];
  for (const value of keys) {
    try {
      const jwk = publicJwkSchema.safeParse(value);
      if (!jwk.success) fail('JWS_MALFORMED', 'a hub key is not an Ed25519 public JWK');
      const alg = jwk.data.alg ?? 'Ed25519';
      const imported = await importVerificationKey(jwk.data, alg);
      result.push({ kid: imported.kid, alg, jwk: { kty: jwk.data.kty, crv: jwk.data.crv, x: jwk.data.x } });
    } catch (error) {
      if (!(error instanceof CorridorError)) throw error;
      log.warn({ code: error.code, reason: error.message }, 'hub receipt key refused; not pinned');
    }
  }
  return result;
}

function parsePublicJwk(value: unknown): PublicJwk {
  const parsed = publicJwkSchema.safeParse(value);
  if (!parsed.success) fail('JWS_MALFORMED', 'the key is not an Ed25519 public JWK');
  // Only the key itself is pinned: kid, alg and use are held in their own columns or derived.
  return { kty: parsed.data.kty, crv: parsed.data.crv, x: parsed.data.x };
}

/** The times of `update` that `current` has not recorded: each time is written once. */
function newTimes(current: KeyValidity, update: KeyValidity): KeyValidity | undefined {
  const merged: KeyValidity = {
    activatedAt: current.activatedAt ?? update.activatedAt,
    retiredAt: current.retiredAt ?? update.retiredAt,
    revokedAt: current.revokedAt ?? update.revokedAt,
    compromisedSince: current.compromisedSince ?? ((current.revokedAt ?? update.revokedAt) === undefined ? undefined : update.compromisedSince),
  };
  const changed =
    merged.activatedAt !== current.activatedAt ||
    merged.retiredAt !== current.retiredAt ||
    merged.revokedAt !== current.revokedAt ||
    merged.compromisedSince !== current.compromisedSince;
  return changed ? merged : undefined;
}

/** Pins kept in the node database (`pinned_key`, `pinned_key_state`, `hub_key`), which refuses rewriting them. */
export function databasePins(db: Kysely<NodeDatabase>): PinStore {
  const select = () =>
    db
      .selectFrom('pinned_key as p')
      .leftJoin('pinned_key_state as s', 's.kid', 'p.kid')
      .select([
        'p.kid',
        'p.member_id',
        'p.alg',
        'p.jwk',
        's.accepted_by',
        's.rotation_statement',
        's.signed_by_kid',
        's.activated_at',
        's.retired_at',
        's.revoked_at',
        's.compromised_since',
      ]);
  type Row = Awaited<ReturnType<ReturnType<typeof select>['executeTakeFirstOrThrow']>>;
  const memberRow = (row: Row): PinnedMemberKey => {
    if (!isMemberId(row.member_id) || !isSigningAlgorithm(row.alg)) fail('INTERNAL', `the pinned key ${row.kid} is corrupt in the node database`);
    const base = {
      kid: row.kid,
      member: row.member_id,
      alg: row.alg,
      jwk: parsePublicJwk(row.jwk),
      validity: {
        activatedAt: row.activated_at ?? undefined,
        retiredAt: row.retired_at ?? undefined,
        revokedAt: row.revoked_at ?? undefined,
        compromisedSince: row.compromised_since ?? undefined,
      },
    };
    if (row.accepted_by === 'rotation' && row.rotation_statement !== null && row.signed_by_kid !== null) {
      return { ...base, acceptedBy: 'rotation', rotationStatement: row.rotation_statement, signedByKid: row.signed_by_kid };
    }
    return { ...base, acceptedBy: 'first-sight' };
  };
  const hubRow = (row: { kid: string; alg: string; jwk: unknown }): PinnedHubKey => {
    if (!isSigningAlgorithm(row.alg)) fail('INTERNAL', `the pinned hub key ${row.kid} is corrupt in the node database`);
    return { kid: row.kid, alg: row.alg, jwk: parsePublicJwk(row.jwk) };
  };
  const find = async (kid: string): Promise<PinnedMemberKey | undefined> => {
    const row = await select().where('p.kid', '=', kid).executeTakeFirst();
    return row === undefined ? undefined : memberRow(row);
  };
  return {
    findMemberKey: find,
    async memberKeys(member) {
      return (await select().where('p.member_id', '=', member).orderBy('p.first_seen').execute()).map(memberRow);
    },
    async pinMemberKey(key, at) {
      await db.transaction().execute(async (trx) => {
        const inserted = await trx
          .insertInto('pinned_key')
          .values({ kid: key.kid, member_id: key.member, alg: key.alg, jwk: JSON.stringify(key.jwk), first_seen: at })
          .onConflict((oc) => oc.column('kid').doNothing())
          .returning('kid')
          .executeTakeFirst();
        if (inserted === undefined) return;
        const { validity } = key;
        await trx
          .insertInto('pinned_key_state')
          .values({
            kid: key.kid,
            accepted_by: key.acceptedBy,
            rotation_statement: key.acceptedBy === 'rotation' ? key.rotationStatement : null,
            signed_by_kid: key.acceptedBy === 'rotation' ? key.signedByKid : null,
            activated_at: validity.activatedAt ?? null,
            retired_at: validity.retiredAt ?? null,
            revoked_at: validity.revokedAt ?? null,
            compromised_since: validity.revokedAt === undefined ? null : (validity.compromisedSince ?? null),
            updated_at: at,
          })
          .execute();
      });
      return (await find(key.kid)) ?? fail('INTERNAL', `the pin of ${key.kid} went missing`);
    },
    async recordValidity(kid, validity, at) {
      const current = await find(kid);
      if (current === undefined) return false;
      const merged = newTimes(current.validity, validity);
      if (merged === undefined) return false;
      const values = {
        activated_at: merged.activatedAt ?? null,
        retired_at: merged.retiredAt ?? null,
        revoked_at: merged.revokedAt ?? null,
        compromised_since: merged.compromisedSince ?? null,
        updated_at: at,
      };
      await db
        .insertInto('pinned_key_state')
        .values({ kid, accepted_by: 'first-sight', ...values })
        .onConflict((oc) => oc.column('kid').doUpdateSet(values))
        .execute();
      return true;
    },
    async compromisedKeys() {
      return (await select().where('s.compromised_since', 'is not', null).execute()).map(memberRow);
    },
    async hubKeys() {
      const rows = await db.selectFrom('hub_key').select(['kid', 'alg', 'jwk']).orderBy('first_seen').execute();
      return rows.map(hubRow);
    },
    async pinHubKey(key, at) {
      await db
        .insertInto('hub_key')
        .values({ kid: key.kid, alg: key.alg, jwk: JSON.stringify(key.jwk), first_seen: at })
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
      const row = await db.selectFrom('hub_key').select(['kid', 'alg', 'jwk']).where('kid', '=', key.kid).executeTakeFirstOrThrow();
      return hubRow(row);
    },
  };
}

/** Pins held in memory for one process, for `corridor node publish` without a node database. */
export function memoryPins(): PinStore {
  const members = new Map<string, PinnedMemberKey>();
  const hub = new Map<string, PinnedHubKey>();
  return {
    findMemberKey: async (kid) => members.get(kid),
    memberKeys: async (member) => [...members.values()].filter((key) => key.member === member),
    async pinMemberKey(key) {
      const existing = members.get(key.kid);
      if (existing !== undefined) return existing;
      members.set(key.kid, key);
      return key;
    },
    async recordValidity(kid, validity) {
      const current = members.get(kid);
      const merged = current === undefined ? undefined : newTimes(current.validity, validity);
      if (current === undefined || merged === undefined) return false;
      members.set(kid, { ...current, validity: merged });
      return true;
    },
    compromisedKeys: async () => [...members.values()].filter((key) => key.validity.compromisedSince !== undefined),
    hubKeys: async () => [...hub.values()],
    async pinHubKey(key) {
      const existing = hub.get(key.kid);
      if (existing !== undefined) return existing;
      hub.set(key.kid, key);
      return key;
    },
  };
}
