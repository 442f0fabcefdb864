/**
 * The node's trust store: which member signing keys and which hub receipt keys it accepts.
 *
 * Keys come from the hub's key directory, but the hub is not trusted to move them: the first
 * time the directory names a kid for a member, the node pins that kid to that member for good.
 * If the hub later names the same kid for another member, that is refused and logged as an
 * error: a compromised hub could otherwise make one state's bulletins pass as another's. Each
 * kid must be the RFC 7638 thumbprint of its key (checked by `importVerificationKey`), so a
 * directory entry cannot smuggle in a different key under a known kid.
 *
 * Attacker-controlled input: every directory entry (the hub may be compromised) and every kid
 * asked about (it comes from a delivery's JWS header).
 */
import { create } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { isMemberId, printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { importVerificationKey, isSigningAlgorithm } from '../core/jws.js';
import type { SigningAlgorithm, VerificationKey } from '../core/jws.js';
import { verifyReceipt } from '../core/receipt.js';
import type { ReceiptClaims } from '../core/receipt.js';
import { publicJwkSchema } from '../core/region.js';
import type { PublicJwk } from '../core/region.js';
import { parseStrictJson } from '../core/strict-json.js';
import { DirectoryService, GetKeyDirectoryRequestSchema } from '../gen/corridor/v1/directory_pb.js';
import type { GetKeyDirectoryResponse } from '../gen/corridor/v1/directory_pb.js';
import type { Logger } from '../infra/log.js';
import type { NodeDatabase } from './db/schema.js';
import { callErrorToCorridorError } from './hub-errors.js';
import type { HubConnection } from './hub-client.js';

/** A member signing key as pinned: the public JWK (kty, crv, x only), its member and algorithm. */
export interface PinnedMemberKey {
  readonly kid: string;
  readonly member: MemberId;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
}

/** A hub receipt key as pinned. */
export interface PinnedHubKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwk;
}

/** Where pins are kept. Pins are insert-only: pinning a kid that is already pinned returns the existing pin. */
export interface PinStore {
  findMemberKey(kid: string): Promise<PinnedMemberKey | undefined>;
  /** Whether any key of `member` is pinned. */
  hasMemberPins(member: MemberId): Promise<boolean>;
  /** Pins `key` unless its kid is pinned already; returns the pin in force, which may differ from `key`. */
  pinMemberKey(key: PinnedMemberKey, at: Date): Promise<PinnedMemberKey>;
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

/** The keys a node trusts, each pinned the first time it is seen. */
export interface TrustStore {
  /**
   * The pinned key `kid` of `member`, fetching the directory once if the kid is unknown;
   * undefined if the hub does not know it either. Fits `TrustedKeyLookup` of `verifyBulletin`.
   *
   * @throws CorridorError `JWS_UNKNOWN_KEY` if the kid is pinned to another member;
   *   `HUB_UNAVAILABLE` if the directory had to be fetched and could not be.
   */
  lookup(member: MemberId, kid: string): Promise<VerificationKey | undefined>;
  /** Verifies a hub receipt against the pinned hub keys (fetching the directory once for an unknown kid). */
  verifyReceipt(bytes: Uint8Array): Promise<ReceiptClaims>;
  /** The pinned hub key `kid` (fetching the directory once for an unknown kid); it signs receipts and Key Binding JWTs. */
  hubKey(kid: string): Promise<VerificationKey | undefined>;
  /** Fetches the directory and pins every key not seen before. */
  refresh(): Promise<void>;
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
}

/** A trust store over `pins`, filled from `directory` on demand; imported keys are cached in memory. */
export function createTrustStore(deps: TrustStoreDeps): TrustStore {
  const { pins, clock, log } = deps;
  // Imported keys by kid. Importing is async WebCrypto work; pins never change, so caching is safe.
  const memberKeys = new Map<string, CachedMemberKey>();
  const hubKeys = new Map<string, VerificationKey>();
  let hubKeysLoaded = false;
  let inflight: Promise<void> | undefined;

  const refresh = (): Promise<void> => {
    inflight ??= pinDirectory(deps).finally(() => {
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
    const entry = { member: pinned.member, key: await importVerificationKey({ ...pinned.jwk, kid: pinned.kid }, pinned.alg) };
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
    async lookup(member, kid) {
      const entry = (await cachedMemberKey(kid)) ?? (await refreshFor(() => cachedMemberKey(kid)));
      if (entry === undefined) return undefined;
      if (entry.member !== member) {
        log.error({ kid: printable(kid, 64), pinnedTo: entry.member, claimedFor: member }, 'a key pinned to one member was presented for another; refused');
        fail(
          'JWS_UNKNOWN_KEY',
          `kid ${printable(kid, 50)} is pinned to member ${entry.member}; this node never accepts it for member ${member}, whatever the hub's directory says`,
        );
      }
      return entry.key;
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
  };

  async function pinDirectory({ directory }: TrustStoreDeps): Promise<void> {
    const response = await directory();
    const now = clock.now();
    let pinned = 0;
    // Trust on first sight, per member: the keys the directory lists the first time this node
    // sees a member are pinned together. After that the hub cannot add a key for the member
    // (which would let a compromised hub sign as it); a new key needs a rollover signed by a
    // pinned one, which this node does not accept yet.
    const firstSight = new Map<MemberId, boolean>();
    for (const entry of response.memberKeys) {
      const key = await readMemberKey(entry, log);
      if (key === undefined) continue;
      let first = firstSight.get(key.member);
      if (first === undefined) {
        first = !(await pins.hasMemberPins(key.member));
        firstSight.set(key.member, first);
      }
      if (!first && (await pins.findMemberKey(key.kid)) === undefined) {
        log.error(
          { kid: key.kid, member: key.member },
          'the hub directory lists a new key for a member whose keys are already pinned; not trusted without a rollover signed by a pinned key',
        );
        continue;
      }
      const inForce = await pins.pinMemberKey(key, now);
      if (inForce.member !== key.member) {
        log.error(
          { kid: key.kid, pinnedTo: inForce.member, directorySays: key.member },
          'the hub directory names a pinned key for another member; the pin stands',
        );
      } else if (inForce.alg !== key.alg) {
        log.warn({ kid: key.kid, pinnedAlg: inForce.alg, directoryAlg: key.alg }, 'the hub directory names another algorithm for a pinned key; the pin stands');
      } else {
        pinned++;
      }
    }
    for (const key of await readHubKeys(response.hubJwksJson, log)) {
      const inForce = await pins.pinHubKey(key, now);
      if (inForce.alg !== key.alg) log.warn({ kid: key.kid, pinnedAlg: inForce.alg, directoryAlg: key.alg }, 'the hub names another algorithm for a pinned receipt key; the pin stands');
    }
    log.debug({ memberKeys: pinned }, 'key directory fetched');
  }
}

/** Validates one directory entry; an invalid one is logged and skipped, never pinned. */
async function readMemberKey(
  entry: { readonly memberId: string; readonly kid: string; readonly alg: string; readonly jwkJson: string },
  log: Logger,
): Promise<PinnedMemberKey | undefined> {
  const kid = printable(entry.kid, 64);
  try {
    if (!isMemberId(entry.memberId)) fail('JWS_MALFORMED', `member id "${printable(entry.memberId, 20)}" is not a member id`);
    if (!isSigningAlgorithm(entry.alg)) fail('JWS_ALG_NOT_ALLOWED', `algorithm "${printable(entry.alg, 20)}" is not allowed`);
    const jwk = parsePublicJwk(parseStrictJson(entry.jwkJson, 'the directory JWK'));
    // Binds the kid to the key: importVerificationKey refuses a kid that is not the key's thumbprint.
    await importVerificationKey({ ...jwk, kid: entry.kid }, entry.alg);
    return { kid: entry.kid, member: entry.memberId, alg: entry.alg, jwk };
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

/** Pins kept in the node database (`pinned_key`, `hub_key`), which refuses updates to them. */
export function databasePins(db: Kysely<NodeDatabase>): PinStore {
  const memberRow = (row: { kid: string; member_id: string; alg: string; jwk: unknown }): PinnedMemberKey => {
    if (!isMemberId(row.member_id) || !isSigningAlgorithm(row.alg)) fail('INTERNAL', `the pinned key ${row.kid} is corrupt in the node database`);
    return { kid: row.kid, member: row.member_id, alg: row.alg, jwk: parsePublicJwk(row.jwk) };
  };
  const hubRow = (row: { kid: string; alg: string; jwk: unknown }): PinnedHubKey => {
    if (!isSigningAlgorithm(row.alg)) fail('INTERNAL', `the pinned hub key ${row.kid} is corrupt in the node database`);
    return { kid: row.kid, alg: row.alg, jwk: parsePublicJwk(row.jwk) };
  };
  return {
    async findMemberKey(kid) {
      const row = await db.selectFrom('pinned_key').select(['kid', 'member_id', 'alg', 'jwk']).where('kid', '=', kid).executeTakeFirst();
      return row === undefined ? undefined : memberRow(row);
    },
    async hasMemberPins(member) {
      const row = await db.selectFrom('pinned_key').select('kid').where('member_id', '=', member).limit(1).executeTakeFirst();
      return row !== undefined;
    },
    async pinMemberKey(key, at) {
      await db
        .insertInto('pinned_key')
        .values({ kid: key.kid, member_id: key.member, alg: key.alg, jwk: JSON.stringify(key.jwk), first_seen: at })
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
      const row = await db.selectFrom('pinned_key').select(['kid', 'member_id', 'alg', 'jwk']).where('kid', '=', key.kid).executeTakeFirstOrThrow();
      return memberRow(row);
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
    hasMemberPins: async (member) => [...members.values()].some((key) => key.member === member),
    async pinMemberKey(key) {
      const existing = members.get(key.kid);
      if (existing !== undefined) return existing;
      members.set(key.kid, key);
      return key;
    },
    hubKeys: async () => [...hub.values()],
    async pinHubKey(key) {
      const existing = hub.get(key.kid);
      if (existing !== undefined) return existing;
      hub.set(key.kid, key);
      return key;
    },
  };
}
