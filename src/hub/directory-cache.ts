/**
 * What a publish batch reads under the ledger lock that rarely changes, kept between batches:
 * the member keys its bulletins name and every agreement version. Each batch otherwise read
 * both afresh, two of the serial section's round trips (issue 6).
 *
 * Kept only while `ledger_head.directory_version` (migration 0013) stands still: triggers bump it
 * with any change to `member_key` or `agreement_version`, whoever makes it, and the bump waits
 * for the ledger lock. A batch reads the version with its lock, so a version equal to the one
 * the cache was filled at means nothing committed in between, on this replica or another.
 *
 * Use only under the ledger lock, with that transaction's version, in a transaction that writes
 * neither table (the publish path): filled there, the cache holds exactly the committed rows of
 * its version, whether the transaction then commits or rolls back. Unknown kids are not
 * remembered (they are read again).
 */
import type { Kysely } from 'kysely';
import { loadAgreementVersions } from './agreements.js';
import type { StoredAgreementVersion } from './agreements.js';
import type { HubDatabase } from './db/schema.js';
import { findMemberKeys } from './key-store.js';
import type { StoredMemberKey } from './key-store.js';

export class DirectoryCache {
  #version: bigint | undefined;
  #agreements: readonly StoredAgreementVersion[] | undefined;
  readonly #keys = new Map<string, StoredMemberKey>();

  /** Every agreement version (agreements.ts `loadAgreementVersions`), as of `version`. */
  async agreementVersions(trx: Kysely<HubDatabase>, version: bigint): Promise<readonly StoredAgreementVersion[]> {
    this.#at(version);
    this.#agreements ??= await loadAgreementVersions(trx);
    return this.#agreements;
  }

  /** The keys of `kids` that exist (key-store.ts `findMemberKeys`), as of `version`. */
  async memberKeys(trx: Kysely<HubDatabase>, version: bigint, kids: readonly string[]): Promise<ReadonlyMap<string, StoredMemberKey>> {
    this.#at(version);
    const missing = [...new Set(kids)].filter((kid) => !this.#keys.has(kid));
    if (missing.length > 0) for (const [kid, key] of await findMemberKeys(trx, missing)) this.#keys.set(kid, key);
    const found = new Map<string, StoredMemberKey>();
    for (const kid of kids) {
      const key = this.#keys.get(kid);
      if (key !== undefined) found.set(kid, key);
    }
    return found;
  }

  #at(version: bigint): void {
    if (this.#version === version) return;
    this.#version = version;
    this.#agreements = undefined;
    this.#keys.clear();
  }
}
