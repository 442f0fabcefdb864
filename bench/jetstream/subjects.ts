/**
 * How the JetStream target stands in for the hub's release policy with subjects, given that
 * nats-server 2.9 allows one `filter_subject` per consumer: a bulletin is published once, on a
 * subject with one token per agency (the stream's root token, e.g. `b`, then 40 tokens, `1` where the bulletin is released to
 * that agency, `0` elsewhere), and agency k's consumer filters on `1` at token k and `*`
 * everywhere else. One message per bulletin, one consumer per agency, each consumer receives
 * exactly the bulletins released to its agency, in stream order; the server matches each stored
 * subject against each consumer's filter (the work policy does on the hub, minus the
 * signature). The release classes of the corpus (all, one community, 1-3 named agencies) all
 * map to one subject each.
 */
import { AGENCY_COUNT, BENCH_AGENCIES, releasedTo } from '../exchange/corpus-plan.js';
import type { Release } from '../exchange/corpus-plan.js';

/** The subject a bulletin of this release class is published on, under the stream's root token. */
export function subjectOf(root: string, release: Release): string {
  return `${root}.${BENCH_AGENCIES.map((agency) => (releasedTo(release, agency) ? '1' : '0')).join('.')}`;
}

/** The filter of agency `agencyIndex`'s consumer (index into BENCH_AGENCIES). */
export function filterOf(root: string, agencyIndex: number): string {
  if (!Number.isInteger(agencyIndex) || agencyIndex < 0 || agencyIndex >= AGENCY_COUNT) throw new RangeError(`no agency ${agencyIndex}`);
  return `${root}.${Array.from({ length: AGENCY_COUNT }, (_, k) => (k === agencyIndex ? '1' : '*')).join('.')}`;
}
