/**
 * The audit log as a transparency log, over real mTLS gRPC and real PostgreSQL: the integrator
 * folds every exchange event into tiles and signs C2SP checkpoints; members and operators get
 * checkpoints, inclusion and consistency proofs, entries (a member only its own) and tiles, and
 * verify them with the log key the region file publishes; witnesses cosign; bad requests are
 * refused with clear statuses; a log whose stored rows were tampered with is never signed.
 */
import { create, fromBinary } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey } from 'node:crypto';
import { leafConcernsMember, leafHash } from '../../src/core/audit-leaf.js';
import { cosign, cosignatureSigner, openCheckpoint, parseCosignatureVerifierKey } from '../../src/core/checkpoint.js';
import { asMemberId, asOperatorId } from '../../src/core/ids.js';
import { verifyConsistency, verifyInclusion } from '../../src/core/merkle.js';
import { parseVerifierKey } from '../../src/core/note.js';
import {
  AddCosignatureRequestSchema,
  AuditLeafSchema,
  AuditService,
  GetCheckpointRequestSchema,
  GetConsistencyProofRequestSchema,
  GetEntriesRequestSchema,
  GetInclusionProofRequestSchema,
  GetTileRequestSchema,
} from '../../src/gen/corridor/v1/audit_pb.js';
import type { GetCheckpointResponse } from '../../src/gen/corridor/v1/audit_pb.js';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { memberWitnessKeyFile } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

/** The integrator's advisory lock (src/hub/audit-store.ts). */
const INTEGRATOR_LOCK = '7165071367756670057';
const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');

let region: TestRegion;
let idnNode: HubConnection;
let mysNode: HubConnection;
let auditor: HubConnection;

beforeAll(async () => {
  region = await startTestRegion();
  idnNode = await region.connect({ kind: 'member', id: IDN });
  mysNode = await region.connect({ kind: 'member', id: MYS });
  auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
});

afterAll(async () => {
  await region?.close();
});

/** The gRPC error a call failed with (status code and details). */
async function grpcError(call: () => Promise<unknown>): Promise<{ code: number; details: string }> {
  const error: unknown = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error === undefined) throw new Error('the call should have been refused');
  return error as { code: number; details: string };
}

function trust() {
  const audit = region.region.audit;
  if (audit === undefined) throw new Error('the test region has no audit settings');
  return {
    origin: audit.origin,
    logVerifiers: [parseVerifierKey(audit.logKey)],
    witnessVerifiers: region.region.members.flatMap((m) => (m.witnessKey === undefined ? [] : [parseCosignatureVerifierKey(m.witnessKey)])),
  };
}

async function publishOne(): Promise<bigint> {
  const key = await memberKey(region.home, IDN);
  const response = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(IDN)) }));
  return BigInt(response.receipt?.auditPosition ?? 0);
}

async function checkpoint(connection: HubConnection, treeSize = 0n): Promise<GetCheckpointResponse> {
  return connection.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { treeSize }));
}

/** Waits until the latest checkpoint covers `size` leaves. */
async function checkpointCovering(size: bigint): Promise<GetCheckpointResponse> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const latest = await checkpoint(idnNode).catch(() => undefined);
    if (latest !== undefined && latest.treeSize >= size) return latest;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no checkpoint covered ${size} leaves in time`);
}

describe('checkpoints', () => {
  it('are C2SP signed notes by the log key the region file publishes, over the RFC 9162 root of every event', async () => {
    const position = await publishOne();
    const response = await checkpointCovering(position);
    const opened = openCheckpoint(new TextEncoder().encode(response.checkpoint), trust());
    expect(opened.checkpoint.origin).toBe(region.region.audit?.origin);
    expect(opened.checkpoint.size).toBe(response.treeSize);
    expect(Buffer.from(opened.checkpoint.rootHash)).toEqual(Buffer.from(response.rootHash));
    expect(response.quorum).toBe(region.region.audit?.quorum);

    // The root is the RFC 9162 tree of every stored leaf, in position order.
    const leaves = await auditor.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: response.treeSize }));
    expect(leaves.entries.map((e) => e.index)).toEqual([...Array(Number(response.treeSize)).keys()].map(BigInt));
    for (const entry of leaves.entries) expect(Buffer.from(leafHash(entry.leafBytes))).toEqual(Buffer.from(entry.leafHash));
  });

  it('are NOT_FOUND for a size the hub never signed; a final one before any reached the quorum is "not yet"', async () => {
    await expect(checkpoint(idnNode, 10n ** 12n)).rejects.toMatchObject({ code: 5 });
    // No witness has cosigned anything yet in this region.
    await expect(idnNode.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { final: true }))).rejects.toMatchObject({ code: 11 });
  });
});

describe('inclusion and consistency proofs', () => {
  it('prove every event of the tree, by index and by leaf hash, and consistency between checkpoints', async () => {
    const first = await checkpointCovering(await publishOne());
    await publishOne();
    const secondPosition = await publishOne();
    const second = await checkpointCovering(secondPosition);
    expect(second.treeSize).toBeGreaterThan(first.treeSize);

    const entries = await auditor.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: second.treeSize }));
    for (const entry of entries.entries) {
      const byIndex = await idnNode.audit.unary(AuditService.method.getInclusionProof, create(GetInclusionProofRequestSchema, { leaf: { case: 'index', value: entry.index }, treeSize: second.treeSize }));
      verifyInclusion(entry.index, second.treeSize, entry.leafHash, byIndex.proof, second.rootHash);
      expect(Buffer.from(byIndex.leafHash)).toEqual(Buffer.from(entry.leafHash));
    }
    const last = entries.entries[entries.entries.length - 1];
    if (last === undefined) throw new Error('no entries');
    const byHash = await idnNode.audit.unary(AuditService.method.getInclusionProof, create(GetInclusionProofRequestSchema, { leaf: { case: 'leafHash', value: last.leafHash }, treeSize: 0n }));
    expect(byHash.index).toBe(last.index);
    expect(() => verifyInclusion(byHash.index, byHash.treeSize, byHash.leafHash, byHash.proof, second.rootHash)).not.toThrow();

    const consistency = await mysNode.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize: first.treeSize, secondSize: second.treeSize }));
    verifyConsistency(first.treeSize, second.treeSize, first.rootHash, second.rootHash, consistency.proof);
    // A corrupted proof does not verify.
    const corrupted = consistency.proof.map((hash, i) => (i === 0 ? Uint8Array.from(hash, (b, j) => (j === 0 ? b ^ 1 : b)) : hash));
    if (corrupted.length > 0) expect(() => verifyConsistency(first.treeSize, second.treeSize, first.rootHash, second.rootHash, corrupted)).toThrow();
  });

  it('refuse an index at or past the tree size, a size the log has not reached, and first > second, with clear statuses', async () => {
    const latest = await checkpointCovering(1n);
    const indexTooLarge = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.getInclusionProof, create(GetInclusionProofRequestSchema, { leaf: { case: 'index', value: latest.treeSize }, treeSize: latest.treeSize })),
    );
    expect(indexTooLarge).toMatchObject({ code: 3 });
    expect(String(indexTooLarge.details)).toMatch(/not in a tree of size/);
    const future = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize: 1n, secondSize: latest.treeSize + 1000n })),
    );
    expect(future).toMatchObject({ code: 11 });
    const backwards = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize: latest.treeSize, secondSize: 1n })),
    );
    expect(backwards).toMatchObject({ code: 3 });
    expect(String(backwards.details)).toMatch(/larger than the second/);
    const noLeaf = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.getInclusionProof, create(GetInclusionProofRequestSchema, { leaf: { case: 'leafHash', value: new Uint8Array(32) } })),
    );
    expect(noLeaf).toMatchObject({ code: 5 });
    // first = second and first = 0 are valid, empty proofs.
    const same = await idnNode.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize: latest.treeSize, secondSize: latest.treeSize }));
    expect(same.proof).toEqual([]);
    const fromZero = await idnNode.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize: 0n, secondSize: latest.treeSize }));
    expect(fromZero.proof).toEqual([]);
  });
});

describe('entries and tiles', () => {
  it('give a member the leaves of events about its state and only the hashes of the others; operators everything', async () => {
    const latest = await checkpointCovering(await publishOne());
    const asMember = await mysNode.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: latest.treeSize }));
    const asOperator = await auditor.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: latest.treeSize }));
    let withheld = 0;
    for (const [i, entry] of asMember.entries.entries()) {
      const full = asOperator.entries[i];
      expect(full?.withheld).toBe(false);
      expect(Buffer.from(entry.leafHash)).toEqual(Buffer.from(full?.leafHash ?? []));
      const concerns = leafConcernsMember(fromBinary(AuditLeafSchema, full?.leafBytes ?? new Uint8Array()), MYS);
      expect(entry.withheld).toBe(!concerns);
      if (entry.withheld) withheld += 1;
      else expect(Buffer.from(entry.leafBytes)).toEqual(Buffer.from(full?.leafBytes ?? []));
    }
    // IDN's publications do not concern MYS.
    expect(withheld).toBeGreaterThan(0);
  });

  it('serve C2SP tiles whose hashes are the leaf hashes, and refuse a width past the tree', async () => {
    const latest = await checkpointCovering(1n);
    const width = Number(latest.treeSize < 256n ? latest.treeSize : 256n);
    const tile = await idnNode.audit.unary(AuditService.method.getTile, create(GetTileRequestSchema, { level: 0, index: 0n, width }));
    const entries = await auditor.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: BigInt(width) }));
    expect(Buffer.from(tile.data)).toEqual(Buffer.concat(entries.entries.map((e) => e.leafHash)));
    // A tile far past the tree: the log has not reached it (OUT_OF_RANGE, "not yet").
    const past = await grpcError(async () => idnNode.audit.unary(AuditService.method.getTile, create(GetTileRequestSchema, { level: 0, index: latest.treeSize / 256n + 1000n, width: 1 })));
    expect(past).toMatchObject({ code: 11 });
    expect(past.details).toMatch(/holds 0 hashes at tree size/);
  });

  it('refuse entry ranges that are empty, too long or past the checkpoint, and agencies altogether', async () => {
    const latest = await checkpointCovering(1n);
    expect(await grpcError(async () => idnNode.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 2n, end: 2n })))).toMatchObject({ code: 3 });
    expect(await grpcError(async () => idnNode.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: 5000n })))).toMatchObject({ code: 3 });
    expect(await grpcError(async () => idnNode.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: latest.treeSize + 10n })))).toMatchObject({ code: 11 });
    const agency = await region.connect({ kind: 'agency', id: 'MYS:police' as never });
    expect(await grpcError(async () => agency.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})))).toMatchObject({ code: 7 });
  });
});

describe('witness cosignatures', () => {
  async function witness(member: typeof IDN) {
    const jwk = await readPrivateJwkFile(memberWitnessKeyFile(region.home, member));
    const verifier = parseCosignatureVerifierKey(region.region.members.find((m) => m.id === member)?.witnessKey ?? '');
    return cosignatureSigner(verifier.name, createPrivateKey({ key: jwk, format: 'jwk' }));
  }

  function bodyOf(note: string): string {
    return note.slice(0, note.indexOf('\n\n') + 1);
  }

  it('are verified, stored once per member, served with the checkpoint, and make it final at the quorum', async () => {
    const latest = await checkpointCovering(await publishOne());
    const body = bodyOf(latest.checkpoint);
    const now = Math.floor(Date.now() / 1000);
    const first = await idnNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: cosign(body, await witness(IDN), now) }));
    expect(first).toMatchObject({ cosignatures: 1, final: false });
    const again = await idnNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: cosign(body, await witness(IDN), now) }));
    expect(again.cosignatures).toBe(1);
    const second = await mysNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: cosign(body, await witness(MYS), now) }));
    expect(second).toMatchObject({ cosignatures: 2, final: true });

    const served = await checkpoint(idnNode, latest.treeSize);
    expect(served.cosignedBy).toEqual(['IDN', 'MYS']);
    expect(served.final).toBe(true);
    const opened = openCheckpoint(new TextEncoder().encode(served.checkpoint), trust());
    expect(opened.cosignatures.map((c) => c.name).sort()).toEqual([`${region.region.region}/witness/IDN`, `${region.region.region}/witness/MYS`]);
    const final = await idnNode.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { final: true }));
    expect(final.treeSize).toBe(latest.treeSize);
  });

  it('refuse a cosignature by another member’s key, over another root, or with a stale clock, and record the refusal', async () => {
    const latest = await checkpointCovering(1n);
    const body = bodyOf(latest.checkpoint);
    const now = Math.floor(Date.now() / 1000);
    const wrongKey = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: cosign(body, await witness(MYS), now) })),
    );
    expect(wrongKey).toMatchObject({ code: 9 });
    const forged = body.replace(/\n[^\n]+\n$/, `\n${Buffer.alloc(32, 7).toString('base64')}\n`);
    const otherRoot = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: forged, signatureLine: cosign(forged, await witness(IDN), now) })),
    );
    expect(otherRoot).toMatchObject({ code: 3 });
    expect(String(otherRoot.details)).toMatch(/another root hash/);
    const stale = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: cosign(body, await witness(IDN), now - 7200) })),
    );
    expect(stale).toMatchObject({ code: 3 });
    // A witness that adds a line to the checkpoint text signs something the hub never served.
    const extended = `${body}extension line\n`;
    const changedText = await grpcError(async () =>
      idnNode.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: extended, signatureLine: cosign(extended, await witness(IDN), now) })),
    );
    expect(changedText).toMatchObject({ code: 3 });
    expect(changedText.details).toMatch(/differs from the one the hub signed/);
    const operator = await grpcError(async () => auditor.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: 'x' })));
    expect(operator).toMatchObject({ code: 7 });
  });
});

describe('a tampered audit record', () => {
  it('is never signed: a changed leaf stops the integrator, and nothing after it gets a checkpoint', async () => {
    const before = await checkpointCovering(await publishOne());
    // Even the database owner, switching the append-only triggers off, cannot make the hub sign
    // a rewritten history. The test holds the integrator's advisory lock while it tampers, so
    // the integrator sees the event only after it was changed.
    const lock = new pg.Client({ connectionString: region.databaseUrl });
    await lock.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [INTEGRATOR_LOCK]);
      const position = await publishOne();
      await lock.query('ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only');
      await lock.query(`UPDATE audit_event SET leaf = leaf || '\\x00'::bytea WHERE position = $1`, [position]);
      await lock.query('ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only');
      await lock.query('SELECT pg_advisory_unlock($1)', [INTEGRATOR_LOCK]);
    } finally {
      await lock.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const latest = await checkpoint(idnNode);
    expect(latest.treeSize).toBe(before.treeSize);
  });
});
