/**
 * Retention: how long the hub keeps what a bulletin holds about persons. A bulletin's retention
 * ends at the earliest of its `exp` (the originator's limit), the retention limit of every sharing
 * agreement it was released under (counted from its hub time), and the region's default (also
 * from its hub time). At that point the hub stops handing it out and purges its Disclosures and
 * the details of the events about it; the signed skeleton and every audit leaf stay.
 */
import type { AgreementVersion } from './agreement.js';

const DAY_MS = 86_400_000;

/** When and why a bulletin's retention ends. */
export interface RetentionEnd {
  readonly endsAt: Date;
  /** `exp`, `agreement:<id>@<version>` or `region-default`. */
  readonly basis: string;
}

/**
 * The end of a bulletin's retention.
 *
 * @param agreementsReleasedUnder the agreement versions (`id@version` labels resolved) that the
 *   decisions delivering it rest on; those without a `retention_days` set no limit.
 * @param defaultDays the region default in days; undefined for none.
 */
export function retentionEnd(
  bulletin: { readonly hubTime: Date; readonly expiresAt: Date },
  agreementsReleasedUnder: readonly AgreementVersion[],
  defaultDays: number | undefined,
): RetentionEnd {
  let end: RetentionEnd = { endsAt: bulletin.expiresAt, basis: 'exp' };
  const consider = (endsAt: Date, basis: string): void => {
    if (endsAt < end.endsAt) end = { endsAt, basis };
  };
  // Sorted so that, between equal limits, the basis named does not depend on input order.
  for (const version of [...agreementsReleasedUnder].sort((a, b) => (agreementLabel(a) < agreementLabel(b) ? -1 : 1))) {
    const days = version.agreement.retentionDays;
    if (days !== undefined) consider(new Date(bulletin.hubTime.getTime() + days * DAY_MS), `agreement:${agreementLabel(version)}`);
  }
  if (defaultDays !== undefined) consider(new Date(bulletin.hubTime.getTime() + defaultDays * DAY_MS), 'region-default');
  return end;
}

function agreementLabel(version: AgreementVersion): string {
  return `${version.agreement.id}@${version.version}`;
}

/**
 * The region default in force: the stricter of the region file's `retentionDays` and the hub
 * configuration's `retention.defaultDays`, so that neither can lengthen what the other shortens.
 */
export function effectiveDefaultDays(regionDays: number | undefined, configDays: number | undefined): number | undefined {
  if (regionDays === undefined) return configDays;
  if (configDays === undefined) return regionDays;
  return Math.min(regionDays, configDays);
}
