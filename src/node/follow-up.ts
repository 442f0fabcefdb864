/**
 * Follow-ups from the originator's side: an update or a correction is a full draft with a
 * `lifecycle` claim added; a withdrawal carries only its reason, and is completed here from the
 * bulletin it withdraws (its category, handling and the states it concerns), which the member
 * fetches from the hub as the originator (`GetBulletin` returns a member its own bulletins).
 */
import { create } from '@bufbuild/protobuf';
import type { Clock } from '../core/clock.js';
import { epochSeconds } from '../core/clock.js';
import { fail } from '../core/errors.js';
import { memberUri, parseBulletinId, printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { parseCompactJws } from '../core/jws.js';
import { LIFECYCLE_ACTIONS, withdrawalDraft } from '../core/lifecycle.js';
import type { LifecycleAction as Action } from '../core/lifecycle.js';
import type { BulletinClaims } from '../core/bulletin.js';
import { processDisclosures, parseSdJwt } from '../core/sd-jwt.js';
import { parseStrictJson } from '../core/strict-json.js';
import { BULLETIN_CATEGORIES } from '../core/vocabulary.js';
import { MAX_BULLETIN_BYTES } from '../core/verify-bulletin.js';
import { BulletinState, ExchangeService, GetBulletinRequestSchema, LifecycleAction } from '../gen/corridor/v1/exchange_pb.js';
import type { BulletinStatus } from '../gen/corridor/v1/exchange_pb.js';
import type { HubConnection } from './hub-client.js';

/** Reads `--action`. */
export function parseLifecycleAction(value: string): Action {
  const action = LIFECYCLE_ACTIONS.find((a) => a === value);
  if (action === undefined) fail('REQUEST_INVALID', `--action must be one of ${LIFECYCLE_ACTIONS.join(', ')}, not "${printable(value, 30)}"`);
  return action;
}

/**
 * A draft (JSON bytes) made a follow-up: its `lifecycle` claim set to `lifecycle`. A draft that
 * already names another follow-up is refused rather than silently changed.
 */
export function withLifecycle(draftJson: Uint8Array, lifecycle: { readonly action: 'update' | 'correction'; readonly supersedes: string; readonly reason?: string | undefined }): Uint8Array {
  parseBulletinId(lifecycle.supersedes);
  const draft = parseStrictJson(Buffer.from(draftJson).toString('utf8'), 'the bulletin draft');
  if (typeof draft !== 'object' || draft === null || Array.isArray(draft)) fail('CONTENT_INVALID', 'bulletin draft invalid: (root): a draft is a JSON object');
  const claim = { action: lifecycle.action, supersedes: lifecycle.supersedes, ...(lifecycle.reason === undefined ? {} : { reason: lifecycle.reason }) };
  const existing = (draft as Record<string, unknown>)['lifecycle'];
  if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(claim)) {
    fail('CONTENT_INVALID', 'bulletin draft invalid: lifecycle: the draft names another follow-up than --supersedes and --action');
  }
  return Buffer.from(JSON.stringify({ ...draft, lifecycle: claim }), 'utf8');
}

/**
 * The draft of a withdrawal of `supersedes`, one of `member`'s bulletins, with `reason`: the
 * category, handling, title, states and language are read from the bulletin as the hub holds it.
 *
 * @throws CorridorError `NOT_ORIGINATOR` for another member's bulletin (before asking the hub);
 *   the hub's code when it does not give the bulletin (`NOT_FOUND`).
 */
export async function withdrawalDraftFor(hub: HubConnection, member: MemberId, supersedes: string, reason: string, clock: Clock): Promise<Uint8Array> {
  const id = parseBulletinId(supersedes);
  if (id.member !== member) fail('NOT_ORIGINATOR', `${supersedes} is a bulletin of ${id.member}: only its originator may withdraw it`);
  const response = await hub.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: supersedes }), { deadlineMs: 15_000 });
  // The hub's copy of our own bulletin; what matters for the withdrawal (where it goes) is checked
  // again by the hub, which delivers it to every agency that received the original anyway.
  const sdJwt = parseSdJwt(response.sdJwt, MAX_BULLETIN_BYTES);
  const jws = parseCompactJws(Buffer.from(sdJwt.issuerJwt, 'latin1'), MAX_BULLETIN_BYTES);
  const claims = processDisclosures(jws.payload, []).payload as Record<string, unknown>;
  if (claims['iss'] !== memberUri(member) || claims['jti'] !== id.jti) fail('JWS_MALFORMED', `the hub answered for ${supersedes} with another bulletin`);
  const category = BULLETIN_CATEGORIES.find((c) => c === claims['category']);
  const handling = claims['handling'];
  const content = claims['content'];
  const exp = claims['exp'];
  if (category === undefined || typeof handling !== 'object' || handling === null || typeof content !== 'object' || content === null || typeof exp !== 'number') {
    fail('JWS_MALFORMED', `${supersedes} as the hub holds it is not a bulletin this node can withdraw`);
  }
  const h = handling as Record<string, unknown>;
  const c = content as Record<string, unknown>;
  const draft = withdrawalDraft(
    {
      id: supersedes,
      category,
      handling: {
        tlp: String(h['tlp']),
        releasable_to: h['releasable_to'],
        code: String(h['code']),
        ...(typeof h['restrictions'] === 'string' ? { restrictions: h['restrictions'] } : {}),
      },
      title: typeof c['title'] === 'string' ? c['title'] : supersedes,
      statesConcerned: Array.isArray(c['states_concerned']) ? c['states_concerned'].filter((s): s is string => typeof s === 'string') : [],
      language: typeof c['language'] === 'string' ? c['language'] : 'en',
      expiresAt: exp,
    },
    reason,
    epochSeconds(clock.now()),
  );
  return Buffer.from(JSON.stringify(draft), 'utf8');
}

/** A bulletin's lifecycle as the hub reports it now (the hub's word; a follow-up's own signed claim is in its claims). */
export interface ReportedStatus {
  readonly state: 'active' | 'superseded' | 'withdrawn';
  /** The latest bulletin of its thread, when it is not this one. */
  readonly latest: { readonly id: string; readonly action: string } | undefined;
}

/** Reads the hub-reported status of a delivery, as hub-supplied text: bounded, printable. */
export function reportedStatus(status: BulletinStatus | undefined): ReportedStatus {
  const state = status?.state === BulletinState.WITHDRAWN ? 'withdrawn' : status?.state === BulletinState.SUPERSEDED ? 'superseded' : 'active';
  const latestId = status?.latestBulletinId ?? '';
  return {
    state,
    latest: latestId === '' ? undefined : { id: printable(latestId, 100), action: actionName(status?.latestAction ?? LifecycleAction.UNSPECIFIED) },
  };
}

function actionName(action: LifecycleAction): string {
  switch (action) {
    case LifecycleAction.UPDATE:
      return 'update';
    case LifecycleAction.CORRECTION:
      return 'correction';
    case LifecycleAction.WITHDRAWAL:
      return 'withdrawal';
    default:
      return 'follow-up';
  }
}

/**
 * How a delivery reads as a follow-up, from its **signed** lifecycle claim: "UPDATE of ID",
 * "CORRECTION of ID", "WITHDRAWN ID" (with the reason); undefined for an original bulletin.
 */
export function followUpHeadline(claims: Pick<BulletinClaims, 'lifecycle'>): string | undefined {
  const lifecycle = claims.lifecycle;
  if (lifecycle === undefined) return undefined;
  if (lifecycle.action === 'withdrawal') return `WITHDRAWN ${lifecycle.supersedes}${lifecycle.reason === undefined ? '' : `: ${lifecycle.reason}`}`;
  return `${lifecycle.action.toUpperCase()} of ${lifecycle.supersedes}${lifecycle.reason === undefined ? '' : ` (${lifecycle.reason})`}`;
}

/** What a recipient should know of a bulletin's state now, for a line: empty when it is in force. */
export function statusNote(status: ReportedStatus): string {
  // Withdrawn with no later bulletin: this is the withdrawal itself, whose headline says so.
  if (status.state === 'withdrawn') return status.latest === undefined ? '' : `  [WITHDRAWN by ${status.latest.id}: do not rely on it]`;
  if (status.state === 'superseded' && status.latest !== undefined) return `  [superseded: ${status.latest.action} ${status.latest.id}]`;
  return '';
}
