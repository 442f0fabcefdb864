/**
 * What a member node itself knows happened, for its audit monitor to find in the log: the
 * bulletins it published (outbox rows with the hub's receipt), the deliveries its agencies stored
 * (inbox rows, in the node's database and in the agencies' own databases where the node can reach
 * them), and the signing keys it holds (its private key files). Read-only, except for storing
 * the inclusion proof of a publication beside its receipt.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { sha256 } from '../core/audit-leaf.js';
import type { MemberId } from '../core/ids.js';
import { jwkThumbprint } from '../core/jws.js';
import type { SigningAlgorithm } from '../core/jws.js';
import { readReceiptClaims } from '../core/receipt.js';
import type { ReceiptClaims } from '../core/receipt.js';
import type { PublicJwk, Region } from '../core/region.js';
import { computeSdHash } from '../core/sd-jwt.js';
import { createKysely, createPool, provideDatabase, withDatabase } from '../infra/database.js';
import { memberDir, nextSigningKeyFile, pathExists } from '../infra/home.js';
import { readPrivateJwkFile } from '../infra/keys.js';
import type { Logger } from '../infra/log.js';
import { agencyDatabaseName } from './agency.js';
import type { NodeConfig } from './config.js';
import { migrateNodeDatabase } from './db/migrations.js';
import type { NodeDatabase } from './db/schema.js';
import { nodeDatabaseName } from './node.js';

/** A bulletin the node published, with the hub's receipt. */
export interface OwnPublication {
  readonly bulletinId: string;
  /** The receipt JWS as stored (the node verified it against the hub's pinned key when it arrived). */
  readonly receipt: Uint8Array;
  readonly claims: ReceiptClaims;
  /** SHA-256 of the Issuer-signed JWT of the bytes the node holds as published. */
  readonly jwsSha256: Uint8Array;
  /** Whether a tlog-proof is already stored beside the receipt. */
  readonly hasProof: boolean;
}

/** A delivery one of the member's agencies verified and stored. */
export interface OwnDelivery {
  readonly agency: string;
  readonly bulletinId: string;
  /** The sd_hash of the presentation as received: what the DELIVER event must log. */
  readonly sdHash: Uint8Array;
  /** Audit position of the bulletin's PUBLISH event (from the receipt that came with it). */
  readonly publishPosition: bigint;
  readonly receivedAt: Date;
}

/** A signing key whose private half the node holds. */
export interface HeldKey {
  readonly kid: string;
  readonly jwk: PublicJwk;
  readonly alg: SigningAlgorithm;
}

/** The node's own records, as the monitor reads them. */
export interface OwnRecords {
  publications(): Promise<readonly OwnPublication[]>;
  deliveries(): Promise<readonly OwnDelivery[]>;
  heldKeys(): Promise<readonly HeldKey[]>;
  /** The stored tlog-proof of a publication, if any. */
  storedProof(bulletinId: string): Promise<string | undefined>;
  /** Stores a verified tlog-proof beside the publication's receipt. */
  storeProof(bulletinId: string, proof: string): Promise<void>;
}

/**
 * Records over a node database (`node`), the databases of the member's agencies that the node can
 * reach (`agencies`; an agency sharing the node's database is found in `node`), and the key files.
 */
export function nodeRecords(options: {
  readonly member: MemberId;
  readonly node: Kysely<NodeDatabase>;
  readonly agencies?: readonly Kysely<NodeDatabase>[];
  /** Private signing-key files the member holds. */
  readonly keyFiles: () => Promise<readonly string[]>;
}): OwnRecords {
  const { member, node } = options;
  return {
    async publications() {
      const rows = await node
        .selectFrom('outbox')
        .select(['bulletin_id', 'jws', 'receipt', 'tlog_proof'])
        .where('member_id', '=', member)
        .where('state', '=', 'published')
        .orderBy('seq')
        .execute();
      return rows.flatMap((row) => {
        if (row.receipt === null) return [];
        const text = Buffer.from(row.jws).toString('latin1');
        const issuerJwt = text.includes('~') ? text.slice(0, text.indexOf('~')) : text;
        return [{ bulletinId: row.bulletin_id, receipt: row.receipt, claims: readReceiptClaims(row.receipt), jwsSha256: sha256(Buffer.from(issuerJwt, 'latin1')), hasProof: row.tlog_proof !== null }];
      });
    },
    async deliveries() {
      const found = new Map<string, OwnDelivery>();
      const sources = [node, ...(options.agencies ?? [])];
      for (const [i, db] of sources.entries()) {
        const query = db
          .selectFrom('inbox')
          .select(['agency_id', 'bulletin_id', 'jws', 'receipt', 'received_at'])
          .where('agency_id', 'like', `${member}:%`)
          .execute();
        // An agency's database the node merely found may not be set up yet; the node's own must be.
        const rows = i === 0 ? await query : await query.catch(() => []);
        for (const row of rows) {
          const text = Buffer.from(row.jws).toString('latin1');
          const sdHash = Buffer.from(computeSdHash(text.slice(0, text.lastIndexOf('~') + 1)), 'base64url');
          const claims = readReceiptClaims(row.receipt);
          found.set(`${row.agency_id} ${row.bulletin_id}`, {
            agency: row.agency_id,
            bulletinId: row.bulletin_id,
            sdHash,
            publishPosition: BigInt(claims.audit_position),
            receivedAt: row.received_at,
          });
        }
      }
      return [...found.values()];
    },
    async heldKeys() {
      const keys = new Map<string, HeldKey>();
      for (const file of await options.keyFiles()) {
        const jwk = await readPrivateJwkFile(file);
        if (typeof jwk.x !== 'string') continue;
        const publicJwk: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
        const kid = await jwkThumbprint(publicJwk);
        keys.set(kid, { kid, jwk: publicJwk, alg: jwk.alg === 'EdDSA' ? 'EdDSA' : 'Ed25519' });
      }
      return [...keys.values()];
    },
    async storedProof(bulletinId) {
      const row = await node.selectFrom('outbox').select('tlog_proof').where('bulletin_id', '=', bulletinId).executeTakeFirst();
      return row?.tlog_proof ?? undefined;
    },
    async storeProof(bulletinId, proof) {
      await node.updateTable('outbox').set({ tlog_proof: proof }).where('bulletin_id', '=', bulletinId).where('state', '=', 'published').execute();
    },
  };
}

/**
 * The member's private signing-key files: the configured one, the next key of a pending rotation
 * beside it, and every `signing-key*.jwk` in the member's directory.
 */
export function memberKeyFiles(home: string, member: MemberId, configured: string): () => Promise<string[]> {
  return async () => {
    const dir = memberDir(home, member);
    const names = await readdir(dir).catch(() => [] as string[]);
    const files = names.filter((name) => /^signing-key.*\.jwk$/.test(name)).map((name) => path.join(dir, name));
    const next = nextSigningKeyFile(configured);
    const extra = (await pathExists(next)) ? [next] : [];
    return [...new Set([configured, ...extra, ...files].map((file) => path.resolve(file)))];
  };
}

/** Records opened from a node configuration, with what must be closed afterwards. */
export interface OpenedRecords {
  readonly records: OwnRecords;
  close(): Promise<void>;
}

/**
 * Opens the node's database (embedded unless configured; migrated, as the node itself does) and,
 * in the embedded cluster, the databases of the member's agencies that exist already (never
 * creating one). With an external database the agencies' clients share the node's.
 */
export async function openNodeRecords(config: NodeConfig, region: Region, log: Logger): Promise<OpenedRecords> {
  const database = await provideDatabase({ databaseUrl: config.databaseUrl, home: config.home, name: nodeDatabaseName(config.member), log: log.child({ subsystem: 'db' }) });
  const node = createKysely<NodeDatabase>(createPool(database.url, 2, log));
  const agencies: Kysely<NodeDatabase>[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(agencies.map((db) => db.destroy()));
    await node.destroy();
    await database.release();
  };
  try {
    await migrateNodeDatabase(node);
    if (config.databaseUrl === undefined) {
      const wanted = region.agencies.filter((a) => a.member === config.member).map((a) => agencyDatabaseName(a.id));
      if (wanted.length > 0) {
        const existing = await sql<{ datname: string }>`SELECT datname FROM pg_database WHERE datname = ANY(${wanted})`.execute(node);
        for (const { datname } of existing.rows) agencies.push(createKysely<NodeDatabase>(createPool(withDatabase(database.url, datname), 1, log)));
      }
    }
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  return { records: nodeRecords({ member: config.member, node, agencies, keyFiles: memberKeyFiles(config.home, config.member, config.signingKeyFile) }), close };
}
