/**
 * Scenario `hotpath` (target hub, issue 6): the pieces of the hub's per-bulletin and per-delivery
 * work that were written by hand for speed, each timed in this process against the library path
 * it replaced, in alternating rounds (A B A B …) so that both see the same minutes of this shared
 * machine. Reported per variant: µs per call over the rounds (p50 = the median round), and on the
 * hand-written variant the ratio of the medians. Each pair must give the same result (the same
 * bytes, the same verdict), or the run is void.
 *
 * - `hotpath_delivery_frame`: one delivery's stream frame, `SubscribeResponse{delivery}`, for a
 *   2 KB bulletin with a 350-byte Key Binding JWT: protobuf-es `create` + `toBinary` of
 *   `deliveryMessage` against `encodeDeliveryFrame` (src/hub/transport/delivery-frame.ts).
 * - `hotpath_content_validate`: protovalidate's `validate` of a bench route alert's content (a
 *   1.5 KB summary): its default RE2JS matcher against `schemaRegexMatch`
 *   (src/core/schema-regex.ts); and `parseContent` as the hub runs it (shape, fromJson,
 *   validate).
 * - `hotpath_audit_leaf`: one DELIVER event as a version 2 leaf and its details: protobuf-es
 *   `create` + `toBinary` (plus the same commitment and leaf hash) against `encodeAuditLeaf`.
 */
import { create, createRegistry, fromJson, toBinary } from '@bufbuild/protobuf';
import type { JsonValue } from '@bufbuild/protobuf';
import { createValidator } from '@bufbuild/protovalidate';
import type { Validator } from '@bufbuild/protovalidate';
import { AUDIT_LEAF_VERSION, EventKind, detailsCommitment, encodeAuditLeaf, leafHash } from '../../src/core/audit-leaf.js';
import type { AuditLeafFields } from '../../src/core/audit-leaf.js';
import { parseContent } from '../../src/core/content.js';
import { schemaRegexMatch } from '../../src/core/schema-regex.js';
import { AuditLeafSchema, EventDetailsSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { BulletinContentSchema } from '../../src/gen/corridor/v1/bulletin_pb.js';
import { SubscribeResponseSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { file_corridor_v1_rules } from '../../src/gen/corridor/v1/rules_pb.js';
import type { DeliveryGrant, StoredBulletin } from '../../src/hub/store.js';
import { deliveryMessage } from '../../src/hub/subscribe.js';
import { encodeDeliveryFrame } from '../../src/hub/transport/delivery-frame.js';
import { routeAlertContent } from '../exchange/corpus.js';
import type { Scenario, ScenarioContext } from '../harness.js';
import { VoidRun } from '../harness.js';
import { summarize } from '../stats.js';

const PLAN = {
  full: { rounds: 5, frames: 10_000, contents: 800, leaves: 10_000 },
  quick: { rounds: 3, frames: 4_000, contents: 300, leaves: 4_000 },
} as const;

export const hotpathScenario: Scenario = {
  name: 'hotpath',
  target: 'hub',
  description: 'hot path: hand-written delivery frames, schema regexes and audit leaves against the library paths they replaced, alternating rounds in one process',
  run: runHotpath,
};

function runHotpath(ctx: ScenarioContext): Promise<void> {
  const plan = ctx.quick ? PLAN.quick : PLAN.full;
  compare(ctx, 'hotpath_delivery_frame', plan.rounds, plan.frames, deliveryFrames());
  compare(ctx, 'hotpath_content_validate', plan.rounds, plan.contents, contentValidation());
  compare(ctx, 'hotpath_audit_leaf', plan.rounds, plan.leaves, auditLeaves());
  return Promise.resolve();
}

interface Pair {
  readonly params: Record<string, string | number>;
  /** The library path: the reference. */
  readonly reference: { readonly name: string; run(): unknown };
  /** The hand-written path, and any others timed beside it. */
  readonly ours: readonly { readonly name: string; run(): unknown }[];
  /** Throws VoidRun unless the results agree. */
  check(reference: unknown, ours: readonly unknown[]): void;
}

function compare(ctx: ScenarioContext, point: string, rounds: number, iterations: number, pair: Pair): void {
  const variants = [pair.reference, ...pair.ours];
  pair.check(pair.reference.run(), pair.ours.map((variant) => variant.run()));
  // One unmeasured round each first (JIT, caches).
  for (const variant of variants) time(variant.run, Math.ceil(iterations / 4));
  const perRound = new Map(variants.map((variant) => [variant.name, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) perRound.get(variant.name)?.push(time(variant.run, iterations));
  }
  const referenceStats = summarize(perRound.get(pair.reference.name) ?? []);
  for (const variant of variants) {
    const stats = summarize(perRound.get(variant.name) ?? []);
    const reference = variant === pair.reference;
    ctx.record({
      point,
      variant: variant.name,
      unit: 'µs',
      params: { ...pair.params, rounds, iterations },
      stats,
      extra: reference ? { reference: true } : { speedupOverReference: referenceStats.p50 / stats.p50 },
    });
  }
  ctx.log(
    `${point}: ${variants.map((variant) => `${variant.name} ${summarize(perRound.get(variant.name) ?? []).p50.toFixed(2)} µs`).join(', ')} (median of ${rounds} rounds of ${iterations})`,
  );
}

/** The last result of a timed call, kept where the optimiser cannot prove it unused. */
export let lastResult: unknown;

/** µs per call of `run` over `iterations` calls. */
function time(run: () => unknown, iterations: number): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) lastResult = run();
  return Number(process.hrtime.bigint() - started) / 1000 / iterations;
}

function sameBytes(a: unknown, b: unknown): boolean {
  return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

// -------------------------------------------------------------------------------------------------

function deliveryFrames(): Pair {
  const bulletin: StoredBulletin = {
    sequence: 1_234_567n,
    id: 'IDN:bench1-0000012345-o',
    issuer: 'IDN',
    jti: 'bench1-0000012345-o',
    jws: Buffer.alloc(2_150, 0x41),
    jwsSha256: Buffer.alloc(32, 0x01),
    hubTime: new Date(1_764_000_000_000),
    expiresAt: new Date(1_790_000_000_000),
    auditPosition: 50_000_123n,
    receipt: Buffer.alloc(420, 0x42),
  };
  const grant: DeliveryGrant = {
    reason: 'releasable to IDN by TLP:GREEN; the agency is a police agency of a member the bulletin names',
    policyVersion: 'policy/1',
    release: { released: Buffer.alloc(2_151, 0x43), sdHash: 'A'.repeat(43) },
    withheld: [],
    agreements: [],
  };
  const kbJwt = Buffer.alloc(350, 0x44);
  const reference = (): Uint8Array =>
    toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { event: { case: 'delivery', value: deliveryMessage(bulletin, grant, kbJwt, undefined, undefined) } }));
  return {
    params: { bulletinBytes: bulletin.jws.byteLength, kbJwtBytes: kbJwt.byteLength },
    reference: { name: 'protobuf-es', run: reference },
    ours: [{ name: 'hand-written', run: () => encodeDeliveryFrame(bulletin, grant, kbJwt, undefined, undefined) }],
    check(expected, [actual]) {
      if (!sameBytes(expected, actual)) throw new VoidRun('the hand-written delivery frame differs from protobuf-es');
    },
  };
}

/** What the bench corpus signs: a route alert with a 1.5 KB summary. */
const CONTENT = routeAlertContent('Route 12345', 'IDN', 'MYS', 1_500);

function contentValidation(): Pair {
  const registry = createRegistry(file_corridor_v1_rules);
  const withRe2: Validator = createValidator({ registry });
  const withSchemaRegex: Validator = createValidator({ registry, regexMatch: schemaRegexMatch });
  const message = fromJson(BulletinContentSchema, CONTENT as unknown as JsonValue);
  return {
    params: { summaryChars: CONTENT.summary.length },
    reference: { name: 'validate-re2js', run: () => withRe2.validate(BulletinContentSchema, message).kind },
    ours: [
      { name: 'validate-schema-regex', run: () => withSchemaRegex.validate(BulletinContentSchema, message).kind },
      { name: 'parseContent', run: () => parseContent(CONTENT, { category: 'route_alert', withdrawal: false }, 'bench content') },
    ],
    check(expected, [schemaRegex, parsed]) {
      if (expected !== 'valid' || schemaRegex !== 'valid' || parsed === undefined) throw new VoidRun('the bench content does not validate the same way with RE2 and with the schema regexes');
    },
  };
}

function auditLeaves(): Pair {
  const salt = Buffer.alloc(32, 0x07);
  const fields: AuditLeafFields = {
    kind: EventKind.DELIVER,
    hubTimeMs: 1_764_000_000_123n,
    actor: 'hub',
    bulletinId: 'IDN:bench1-0000012345-o',
    agencyId: 'MYS:immigration',
    objectDigest: Buffer.alloc(32, 0xab),
    code: 'RELEASED',
    objectId: '',
    reason: 'releasable to MYS by TLP:GREEN; the agency is an immigration agency of a member the bulletin names',
    policyVersion: 'policy/1',
    operation: 'Publish',
  };
  const reference = (): Uint8Array => {
    const details = toBinary(EventDetailsSchema, create(EventDetailsSchema, { reason: fields.reason ?? '', policyVersion: fields.policyVersion ?? '', operation: fields.operation ?? '' }));
    const { reason: _reason, policyVersion: _policyVersion, operation: _operation, ...leafFields } = fields;
    const leaf = toBinary(AuditLeafSchema, create(AuditLeafSchema, { ...leafFields, v: AUDIT_LEAF_VERSION, detailsCommitment: detailsCommitment(salt, details) }));
    leafHash(leaf);
    return leaf;
  };
  return {
    params: { kind: 'DELIVER' },
    reference: { name: 'protobuf-es', run: reference },
    ours: [{ name: 'hand-written', run: () => encodeAuditLeaf(fields, salt).leaf.bytes }],
    check(expected, [actual]) {
      if (!sameBytes(expected, actual)) throw new VoidRun('the hand-written audit leaf differs from protobuf-es');
    },
  };
}
