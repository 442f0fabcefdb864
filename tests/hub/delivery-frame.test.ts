import { describe, expect, it } from 'vitest';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { SubscribeResponseSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { LIFECYCLE_ACTIONS } from '../../src/core/lifecycle.js';
import type { BulletinStatus } from '../../src/core/lifecycle.js';
import { ProtoWriter } from '../../src/core/proto-writer.js';
import { PERSONAL_DATA_KINDS } from '../../src/core/vocabulary.js';
import type { BulletinMarking } from '../../src/hub/key-store.js';
import type { DeliveryGrant, StoredBulletin } from '../../src/hub/store.js';
import { deliveryMessage } from '../../src/hub/subscribe.js';
import { encodeDeliveryFrame } from '../../src/hub/transport/delivery-frame.js';

/** What the hand-written frame must equal: protobuf-es's reflective encoding. */
function reference(bulletin: StoredBulletin, grant: DeliveryGrant, kbJwt: Uint8Array, marking: BulletinMarking | undefined, status: BulletinStatus | undefined): Uint8Array {
  return toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { event: { case: 'delivery', value: deliveryMessage(bulletin, grant, kbJwt, marking, status) } }));
}

const text = fc.string({ unit: 'binary', maxLength: 40 });
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
// Milliseconds either side of the epoch, up to the Date range (negative int64 take ten bytes).
const date = fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms));
const action = fc.constantFrom(...LIFECYCLE_ACTIONS);

const bulletinArb: fc.Arbitrary<StoredBulletin> = fc.record({
  sequence: uint64,
  id: text,
  issuer: text,
  jti: text,
  jws: fc.uint8Array({ maxLength: 64 }),
  jwsSha256: fc.uint8Array({ maxLength: 32 }),
  hubTime: date,
  expiresAt: date,
  auditPosition: uint64,
  receipt: fc.uint8Array({ maxLength: 600 }),
});

const grantArb: fc.Arbitrary<DeliveryGrant> = fc.record({
  reason: text,
  policyVersion: text,
  // Large enough that the frame grows past its first estimate and lengths take several bytes.
  release: fc.record({ released: fc.uint8Array({ maxLength: 5000 }), sdHash: fc.constant('A'.repeat(43)) }),
  withheld: fc.array(fc.record({ kind: fc.constantFrom(...PERSONAL_DATA_KINDS), reason: text }), { maxLength: 4 }),
  // Empty strings too: a repeated field writes every element.
  agreements: fc.array(text, { maxLength: 4 }),
});

const markingArb: fc.Arbitrary<BulletinMarking> = fc.record({
  sequence: uint64,
  bulletinId: text,
  kid: text,
  code: text,
  compromisedSince: date,
  revokedAt: date,
  reason: text,
  auditPosition: uint64,
  markedAt: date,
});

const statusArb: fc.Arbitrary<BulletinStatus> = fc.record({
  state: fc.constantFrom('active', 'superseded', 'withdrawn'),
  latest: fc.option(fc.record({ id: text, action }), { nil: undefined }),
  followUp: fc.option(fc.record({ supersedes: text, action }), { nil: undefined }),
});

describe('encodeDeliveryFrame writes exactly what protobuf-es writes', () => {
  it('for any delivery, with or without a marking and a status', () => {
    fc.assert(
      fc.property(bulletinArb, grantArb, fc.uint8Array({ maxLength: 400 }), fc.option(markingArb, { nil: undefined }), fc.option(statusArb, { nil: undefined }), (bulletin, grant, kbJwt, marking, status) => {
        const frame = encodeDeliveryFrame(bulletin, grant, kbJwt, marking, status);
        expect(Buffer.from(frame)).toEqual(Buffer.from(reference(bulletin, grant, kbJwt, marking, status)));
      }),
      { numRuns: 400 },
    );
  });

  it('a typical delivery decodes to the fields it was given', () => {
    const bulletin: StoredBulletin = {
      sequence: 42n,
      id: 'IDN:q7Zc2m4RkV0b8Xy1nT6wEg',
      issuer: 'IDN',
      jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
      jws: Buffer.from('eyJ...'),
      jwsSha256: new Uint8Array(32).fill(9),
      hubTime: new Date(1_750_000_000_123),
      expiresAt: new Date(1_760_000_000_000),
      auditPosition: 1_000_001n,
      receipt: Buffer.from('eyJhbGciOiJFZERTQSJ9.e30.c2ln'),
    };
    const grant: DeliveryGrant = {
      reason: 'RELEASED_UNDER_AGREEMENT',
      policyVersion: 'policy/2',
      release: { released: Buffer.from('issuer.jwt.sig~WyJkMSJd~'), sdHash: 'A'.repeat(43) },
      withheld: [{ kind: 'migrant', reason: 'NO_AGREEMENT_FOR_KIND' }],
      agreements: ['IDN-MYS@3'],
    };
    const decoded = fromBinary(SubscribeResponseSchema, encodeDeliveryFrame(bulletin, grant, Buffer.from('kb.jwt.sig'), undefined, undefined));
    expect(decoded.event.case).toBe('delivery');
    const delivery = decoded.event.case === 'delivery' ? decoded.event.value : undefined;
    expect(delivery?.cursor).toBe(42n);
    expect(Buffer.from(delivery?.sdJwt ?? []).toString()).toBe('issuer.jwt.sig~WyJkMSJd~kb.jwt.sig');
    expect(delivery?.receipt?.hubTimeMs).toBe(1_750_000_000_123n);
    expect(delivery?.receipt?.auditPosition).toBe(1_000_001n);
    expect(delivery?.withheld.map((w) => w.kind)).toEqual(['migrant']);
    expect(delivery?.agreements).toEqual(['IDN-MYS@3']);
    // No status known: the bulletin is active.
    expect(delivery?.status?.state).toBe(1);
    expect(delivery?.marking).toBeUndefined();
  });
});

describe('ProtoWriter', () => {
  it('grows past its first capacity without losing what it wrote', () => {
    const big = new Uint8Array(10_000).fill(3);
    const bytes = new ProtoWriter(16).string(1, 'é'.repeat(50)).bytes(2, big).varint(3, 2n ** 64n - 1n).finish();
    expect(bytes.byteLength).toBe(2 + 100 + 3 + 10_000 + 1 + 10);
    expect(Buffer.from(bytes.subarray(0, 4)).toString('hex')).toBe('0a64c3a9');
  });

  it('refuses to wrap a message written without room for its tag and length', () => {
    expect(() => new ProtoWriter(16, 1).string(1, 'x'.repeat(200)).finishAsField(1)).toThrow(/headroom/);
    expect(Buffer.from(new ProtoWriter(16, 10).string(1, 'ab').finishAsField(1)).toString('hex')).toBe('0a040a026162');
  });

  it('writes a lone surrogate as protobuf-es does (U+FFFD)', () => {
    expect(Buffer.from(new ProtoWriter().string(1, '\ud800').finish()).toString('hex')).toBe('0a03efbfbd');
  });
});
