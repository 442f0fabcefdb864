/**
 * A bulletin's lifecycle: only its originator can update, correct or withdraw it, and each
 * follow-up is a new signed bulletin whose `lifecycle` claim names the bulletin it supersedes.
 * The claim sits at the top level of the signed claims, beside (never inside) the content, so
 * that the content schema can change without touching it.
 *
 * A **thread** is an original bulletin and the follow-ups that supersede one another, each the
 * follow-up of the one before (the hub refuses a follow-up of anything but the thread's latest
 * bulletin, and anything after a withdrawal). Its state is read from its latest bulletin: a
 * withdrawal withdraws the whole thread; an update or a correction supersedes every earlier one.
 */
import { z } from 'zod';
import { fail } from './errors.js';
import { parseBulletinId } from './ids.js';
import type { Decision } from './policy.js';
import { PERSONAL_DATA_KINDS } from './vocabulary.js';
import type { BulletinCategory, PersonalDataKind } from './vocabulary.js';

export const LIFECYCLE_ACTIONS = ['update', 'correction', 'withdrawal'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/** The longest reason a follow-up may state. */
export const MAX_REASON_LENGTH = 1000;

const supersedesSchema = z.string().refine((value) => {
  try {
    parseBulletinId(value);
    return true;
  } catch {
    return false;
  }
}, 'the id of the bulletin followed up, MEMBER:jti');

/** The `lifecycle` claim of a follow-up, as signed (and as written in a draft). */
export const lifecycleClaimSchema = z.strictObject({
  /** update: new information; correction: the earlier bulletin was wrong; withdrawal: no longer stands. */
  action: z.enum(LIFECYCLE_ACTIONS),
  /** The bulletin this one supersedes: the latest of its thread. */
  supersedes: supersedesSchema,
  /** Why; required for a withdrawal, which carries nothing else. */
  reason: z.string().trim().min(1).max(MAX_REASON_LENGTH).optional(),
});

export interface Lifecycle {
  readonly action: LifecycleAction;
  readonly supersedes: string;
  readonly reason: string | undefined;
}

/**
 * The rules on a lifecycle claim that its schema alone cannot say: a bulletin cannot follow up
 * itself, nor another member's bulletin (the originator alone speaks for it), and a withdrawal
 * states a reason and holds no personal data.
 *
 * @throws CorridorError `NOT_ORIGINATOR` for another member's bulletin; `CONTENT_INVALID` otherwise.
 */
export function checkLifecycle(
  claim: z.infer<typeof lifecycleClaimSchema>,
  bulletin: { readonly issuer: string; readonly id: string; readonly personalData: boolean },
  prefix: string,
): Lifecycle {
  const target = parseBulletinId(claim.supersedes);
  if (target.member !== bulletin.issuer) {
    fail('NOT_ORIGINATOR', `${bulletin.id} follows up ${claim.supersedes}, a bulletin of ${target.member}: only its originator may update, correct or withdraw a bulletin`);
  }
  if (claim.supersedes === bulletin.id) fail('CONTENT_INVALID', `${prefix}: lifecycle.supersedes: a bulletin cannot follow up itself`);
  if (claim.action === 'withdrawal') {
    if (claim.reason === undefined) fail('CONTENT_INVALID', `${prefix}: lifecycle.reason: a withdrawal states its reason`);
    if (bulletin.personalData) fail('CONTENT_INVALID', `${prefix}: handling.personal_data: a withdrawal carries only its reason, never personal data`);
  }
  return { action: claim.action, supersedes: claim.supersedes, reason: claim.reason };
}

/** The state of a bulletin in its thread. */
export type BulletinState = 'active' | 'superseded' | 'withdrawn';

/** A bulletin's place in its thread, as `GetBulletin`, deliveries and search show it. */
export interface BulletinStatus {
  readonly state: BulletinState;
  /** The thread's latest bulletin and what it did, when it is not this one. */
  readonly latest: { readonly id: string; readonly action: LifecycleAction } | undefined;
  /** When this bulletin is itself a follow-up: what it supersedes, and how. */
  readonly followUp: { readonly supersedes: string; readonly action: LifecycleAction } | undefined;
}

/**
 * The status of bulletin `id` from its own follow-up record (if it is one) and its thread's
 * latest bulletin (undefined when nothing followed up the thread's original).
 */
export function bulletinStatus(
  id: string,
  own: { readonly supersedes: string; readonly action: LifecycleAction } | undefined,
  head: { readonly id: string; readonly action: LifecycleAction } | undefined,
): BulletinStatus {
  const latest = head === undefined || head.id === id ? undefined : head;
  const headAction = head?.action ?? own?.action;
  const state: BulletinState = headAction === 'withdrawal' ? 'withdrawn' : latest !== undefined ? 'superseded' : 'active';
  return { state, latest, followUp: own };
}

/** What a withdrawal needs to know of the bulletin it withdraws (read from its signed claims). */
export interface WithdrawnBulletin {
  readonly id: string;
  readonly category: BulletinCategory;
  /** The original's handling claim as signed (`tlp`, `releasable_to`, `code`, `restrictions`). */
  readonly handling: { readonly tlp: string; readonly releasable_to: unknown; readonly code: string; readonly restrictions?: string | undefined };
  readonly title: string;
  readonly statesConcerned: readonly string[];
  readonly language: string;
  /** Its `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
}

/**
 * The draft of a withdrawal: the reason alone, under the withdrawn bulletin's category and
 * handling (so that it goes where the original could go, and the hub adds every agency that
 * received the original), kept as long as the original would have been.
 */
export function withdrawalDraft(original: WithdrawnBulletin, reason: string, nowSeconds: number): Record<string, unknown> {
  const trimmed = reason.trim();
  if (trimmed === '' || trimmed.length > MAX_REASON_LENGTH) fail('CONTENT_INVALID', `a withdrawal states its reason, 1 to ${MAX_REASON_LENGTH} characters`);
  const remainingDays = Math.ceil((original.expiresAt - nowSeconds) / 86_400);
  if (remainingDays < 1) fail('RETENTION_ENDED', `${original.id} has expired: its recipients no longer hold it, so there is nothing to withdraw`);
  const title = `Withdrawn: ${original.title}`;
  return {
    category: original.category,
    handling: {
      tlp: original.handling.tlp,
      releasable_to: original.handling.releasable_to,
      code: original.handling.code,
      ...(original.handling.restrictions === undefined ? {} : { restrictions: original.handling.restrictions }),
      personal_data: false,
    },
    content: {
      title: title.length > 200 ? `${title.slice(0, 199)}…` : title,
      summary: trimmed,
      states_concerned: [...original.statesConcerned],
      language: original.language,
    },
    retention_days: Math.min(remainingDays, 3660),
    lifecycle: { action: 'withdrawal', supersedes: original.id, reason: trimmed },
  };
}

/** How a follow-up reads in one line: "UPDATE of IDN:…", "CORRECTION of …", "WITHDRAWAL of …". */
export function describeFollowUp(lifecycle: Pick<Lifecycle, 'action' | 'supersedes'>): string {
  return `${lifecycle.action.toUpperCase()} of ${lifecycle.supersedes}`;
}

/**
 * The decision for a follow-up and one agency. A follow-up reaches everyone the policy entitles
 * today, as any bulletin does, **and** every agency that received the bulletin it follows up:
 * an update, correction or withdrawal that missed them would leave them relying on what the
 * originator no longer stands by. Such an agency, when today's policy alone would deny it (an
 * agreement has ended since, the handling is narrower), receives the follow-up's clear claims
 * only: no Disclosure is released without today's legal basis.
 */
export function followUpDecision(
  decision: Decision,
  followUp: { readonly supersedes: string; readonly personalData: ReadonlySet<PersonalDataKind> },
  receivedOriginal: boolean,
): Decision {
  if (decision.kind === 'deliver' || !receivedOriginal) return decision;
  const withheld = PERSONAL_DATA_KINDS.filter((kind) => followUp.personalData.has(kind)).map((kind) => ({
    kind,
    reason: `not released under today's policy (${decision.code}); the follow-up reaches this agency only because it received ${followUp.supersedes}`,
  }));
  const note = withheld.length === 0 ? '' : `; withheld: ${withheld.map((w) => w.kind).join(', ')}`;
  return {
    kind: 'deliver',
    code: 'RELEASED_TO_ORIGINAL_RECIPIENT',
    reason: `a follow-up reaches every agency that received ${followUp.supersedes}; today's policy alone would not release it (${decision.reason})${note}`,
    policyVersion: decision.policyVersion,
    agreements: [],
    disclose: new Set<PersonalDataKind>(),
    withheld,
  };
}
