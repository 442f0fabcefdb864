import { describe, expect, it } from 'vitest';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { AuditLeafSchema, EventDetailsSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { AUDIT_LEAF_VERSION, EventKind, detailsCommitment, encodeAuditLeaf, leafHash, nodeHash, openEventDetails, sha256 } from '../../src/core/audit-leaf.js';
import type { AuditLeafFields } from '../../src/core/audit-leaf.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

// transparency-dev/merkle rfc6962/rfc6962_test.go
const EMPTY_TREE = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const LEAF_EMPTY = '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d';
const LEAF_L123456 = '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56';
const NODE_N123_N456 = 'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb';

describe('RFC 6962 / 9162 hasher vectors', () => {
  it('empty tree: SHA-256 of nothing', () => {
    expect(hex(sha256(new Uint8Array(0)))).toBe(EMPTY_TREE);
    expect(hex(sha256(''))).toBe(EMPTY_TREE);
  });

  it('leaf ""', () => {
    expect(hex(leafHash(new Uint8Array(0)))).toBe(LEAF_EMPTY);
  });

  it('leaf "L123456"', () => {
    expect(hex(leafHash(ascii('L123456')))).toBe(LEAF_L123456);
  });

  it('node("N123", "N456")', () => {
    expect(hex(nodeHash(ascii('N123'), ascii('N456')))).toBe(NODE_N123_N456);
  });

  it('hashes are 32 bytes', () => {
    expect(leafHash(ascii('x')).byteLength).toBe(32);
    expect(nodeHash(ascii('a'), ascii('b')).byteLength).toBe(32);
  });

  describe('corrupted variants', () => {
    it('leaf with one byte changed', () => {
      expect(hex(leafHash(ascii('L123457')))).not.toBe(LEAF_L123456);
      expect(hex(leafHash(ascii('l123456')))).not.toBe(LEAF_L123456);
    });

    it('leaf with one byte added or removed', () => {
      expect(hex(leafHash(ascii('L12345')))).not.toBe(LEAF_L123456);
      expect(hex(leafHash(ascii('L1234560')))).not.toBe(LEAF_L123456);
      expect(hex(leafHash(Uint8Array.of(0)))).not.toBe(LEAF_EMPTY);
    });

    it('node with one byte changed on either side', () => {
      expect(hex(nodeHash(ascii('N124'), ascii('N456')))).not.toBe(NODE_N123_N456);
      expect(hex(nodeHash(ascii('N123'), ascii('N457')))).not.toBe(NODE_N123_N456);
    });

    it('node with its children swapped', () => {
      expect(hex(nodeHash(ascii('N456'), ascii('N123')))).not.toBe(NODE_N123_N456);
    });

    it('domain separation: a leaf is not its bare hash, and a leaf is not a node', () => {
      const data = ascii('L123456');
      expect(hex(leafHash(data))).not.toBe(hex(sha256(data)));
      // A leaf whose bytes are the concatenation of two children does not collide with the node.
      expect(hex(leafHash(ascii('N123N456')))).not.toBe(NODE_N123_N456);
      expect(hex(sha256(ascii('N123N456')))).not.toBe(NODE_N123_N456);
    });
  });
});

describe('encodeAuditLeaf (version 2: details apart, bound by a salted commitment)', () => {
  const SALT = new Uint8Array(32).fill(7);
  const fields: AuditLeafFields = {
    kind: EventKind.DELIVER,
    hubTimeMs: 1_750_000_000_123n,
    actor: 'hub',
    bulletinId: 'IDN:q7Zc2m4RkV0b8Xy1nT6wEg',
    agencyId: 'MYS:immigration',
    objectDigest: new Uint8Array(32).fill(0xab),
    code: 'RELEASED_UNDER_AGREEMENT',
    reason: 'agreement idn-mys@1 between IDN and MYS covers route_alert for immigration',
    policyVersion: 'corridor-policy/2',
    operation: 'Publish',
  };

  it('is deterministic for one salt: equal fields give equal bytes and hashes', () => {
    const a = encodeAuditLeaf(fields, SALT);
    const b = encodeAuditLeaf({ ...fields, objectDigest: Uint8Array.from(fields.objectDigest ?? []) }, Uint8Array.from(SALT));
    expect(hex(a.leaf.bytes)).toBe(hex(b.leaf.bytes));
    expect(hex(a.leaf.hash)).toBe(hex(b.leaf.hash));
    expect(hex(a.details)).toBe(hex(b.details));
  });

  it('does not depend on the order the fields are given in', () => {
    const reordered: AuditLeafFields = {
      operation: 'Publish',
      policyVersion: 'corridor-policy/2',
      reason: fields.reason ?? '',
      code: 'RELEASED_UNDER_AGREEMENT',
      objectDigest: new Uint8Array(32).fill(0xab),
      agencyId: 'MYS:immigration',
      bulletinId: 'IDN:q7Zc2m4RkV0b8Xy1nT6wEg',
      actor: 'hub',
      hubTimeMs: 1_750_000_000_123n,
      kind: EventKind.DELIVER,
    };
    expect(hex(encodeAuditLeaf(reordered, SALT).leaf.bytes)).toBe(hex(encodeAuditLeaf(fields, SALT).leaf.bytes));
  });

  it('keeps the reason, policy version and operation out of the leaf', () => {
    const { leaf } = encodeAuditLeaf(fields, SALT);
    const text = Buffer.from(leaf.bytes).toString('latin1');
    expect(text).not.toContain('covers route_alert');
    expect(text).not.toContain('corridor-policy/2');
    expect(text).not.toContain('Publish');
    const decoded = fromBinary(AuditLeafSchema, leaf.bytes);
    expect(decoded.v).toBe(AUDIT_LEAF_VERSION);
    expect(AUDIT_LEAF_VERSION).toBe(2);
    expect(decoded.reason).toBe('');
    expect(decoded.detailsCommitment.byteLength).toBe(32);
  });

  it('its hash is the RFC 9162 leaf hash of its exact bytes', () => {
    const { leaf } = encodeAuditLeaf(fields, SALT);
    expect(hex(leaf.hash)).toBe(hex(leafHash(leaf.bytes)));
    expect(hex(leaf.hash)).not.toBe(hex(sha256(leaf.bytes)));
  });

  it('opens its details, and refuses details or a salt that do not match the commitment', () => {
    const { leaf, details, salt } = encodeAuditLeaf(fields, SALT);
    const decoded = fromBinary(AuditLeafSchema, leaf.bytes);
    expect(openEventDetails(decoded, { details, salt })).toMatchObject({ reason: fields.reason, policyVersion: 'corridor-policy/2', operation: 'Publish' });
    expect(hex(detailsCommitment(salt, details))).toBe(hex(decoded.detailsCommitment));
    const other = encodeAuditLeaf({ ...fields, reason: 'a rewritten reason' }, SALT).details;
    expect(() => openEventDetails(decoded, { details: other, salt })).toThrow(/do not match their leaf commitment/);
    expect(() => openEventDetails(decoded, { details, salt: new Uint8Array(32).fill(8) })).toThrow(/do not match/);
    // Purged: the leaf and its hash stay, the details are gone.
    expect(openEventDetails(decoded, undefined)).toBeUndefined();
  });

  it('reads the details of a version 1 leaf from the leaf itself', () => {
    const v1 = create(AuditLeafSchema, { v: 1, kind: EventKind.DENY, actor: 'hub', reason: 'old reason', policyVersion: 'corridor-policy/1', operation: 'Publish' });
    expect(openEventDetails(v1, undefined)).toMatchObject({ reason: 'old reason', policyVersion: 'corridor-policy/1', operation: 'Publish' });
  });

  it('another salt gives another leaf for the same event (a guessed reason cannot be confirmed from the leaf)', () => {
    expect(hex(encodeAuditLeaf(fields, new Uint8Array(32).fill(9)).leaf.hash)).not.toBe(hex(encodeAuditLeaf(fields, SALT).leaf.hash));
  });

  it('the caller cannot override the version, and a salt must be 32 bytes', () => {
    const sneaky = { ...fields, v: 99 } as AuditLeafFields;
    expect(fromBinary(AuditLeafSchema, encodeAuditLeaf(sneaky, SALT).leaf.bytes).v).toBe(AUDIT_LEAF_VERSION);
    expect(() => encodeAuditLeaf(fields, new Uint8Array(16))).toThrow(/32 bytes/);
  });

  it.each<[string, Partial<AuditLeafFields>]>([
    ['kind', { kind: EventKind.DENY }],
    ['hub time', { hubTimeMs: 1_750_000_000_124n }],
    ['actor', { actor: 'member:IDN' }],
    ['agency', { agencyId: 'MYS:coast-guard' }],
    ['one digest byte', { objectDigest: Uint8Array.from([...new Uint8Array(31).fill(0xab), 0xac]) }],
    ['code', { code: 'NOT_RELEASED' }],
    ['reason (through the commitment)', { reason: 'another reason' }],
    ['policy version (through the commitment)', { policyVersion: 'corridor-policy/3' }],
  ])('a different %s gives different bytes and a different hash', (_name, change) => {
    const base = encodeAuditLeaf(fields, SALT).leaf;
    const changed = encodeAuditLeaf({ ...fields, ...change }, SALT).leaf;
    expect(hex(changed.bytes)).not.toBe(hex(base.bytes));
    expect(hex(changed.hash)).not.toBe(hex(base.hash));
  });

  it('one byte of the encoded leaf changed gives a different hash', () => {
    const { leaf } = encodeAuditLeaf(fields, SALT);
    for (const index of [0, Math.floor(leaf.bytes.byteLength / 2), leaf.bytes.byteLength - 1]) {
      const corrupted = Uint8Array.from(leaf.bytes);
      corrupted[index] = (corrupted[index] ?? 0) ^ 0x01;
      expect(hex(leafHash(corrupted))).not.toBe(hex(leaf.hash));
    }
  });
});

describe('encodeAuditLeaf writes exactly what protobuf-es writes', () => {
  it('for any event: the leaf is toBinary(AuditLeaf) and the details toBinary(EventDetails)', () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    fc.assert(
      fc.property(
        fc.record({
          kind: fc.constantFrom(...Object.values(EventKind).filter((v): v is EventKind => typeof v === 'number')),
          // Negative times too: an int64 below zero is ten bytes on the wire.
          hubTimeMs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          actor: text,
          bulletinId: text,
          agencyId: text,
          objectDigest: fc.uint8Array({ maxLength: 40 }),
          code: text,
          objectId: text,
          memberId: text,
          reason: text,
          policyVersion: text,
          operation: text,
        }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (fields, salt) => {
          const encoded = encodeAuditLeaf(fields, salt);
          const details = toBinary(EventDetailsSchema, create(EventDetailsSchema, { reason: fields.reason, policyVersion: fields.policyVersion, operation: fields.operation }));
          const { reason: _r, policyVersion: _p, operation: _o, ...leafFields } = fields;
          const leaf = toBinary(AuditLeafSchema, create(AuditLeafSchema, { ...leafFields, v: AUDIT_LEAF_VERSION, detailsCommitment: detailsCommitment(salt, details) }));
          expect(Buffer.from(encoded.details)).toEqual(Buffer.from(details));
          expect(Buffer.from(encoded.leaf.bytes)).toEqual(Buffer.from(leaf));
          expect(Buffer.from(encoded.leaf.hash)).toEqual(Buffer.from(leafHash(leaf)));
        },
      ),
      { numRuns: 500 },
    );
  });
});
