/**
 * Helpers for the lifecycle, retention and search suites: route-alert content with waypoints and
 * suspects, follow-up claims built as a node builds them, and reading an agency's backlog.
 */
import { create } from '@bufbuild/protobuf';
import { draftToClaims, parseDraft } from '../../src/core/bulletin.js';
import { epochSeconds } from '../../src/core/clock.js';
import { memberUri } from '../../src/core/ids.js';
import type { MemberId } from '../../src/core/ids.js';
import type { SigningKey } from '../../src/core/jws.js';
import { withdrawalDraft } from '../../src/core/lifecycle.js';
import type { LifecycleAction } from '../../src/core/lifecycle.js';
import { ExchangeService, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Delivery, Receipt, SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { grpc } from '../../src/infra/grpc.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, newJti, signBulletin } from './bulletins.js';

export interface Waypoint {
  readonly state: string;
  readonly place: string;
  readonly role: 'origin' | 'embarkation' | 'transit' | 'landing' | 'destination';
}

const DEFAULT_WAYPOINTS: readonly Waypoint[] = [
  { state: 'IDN', place: 'Lhokseumawe', role: 'embarkation' },
  { state: 'MYS', place: 'Port Klang', role: 'landing' },
];

/**
 * The content of a route alert (corridor.v1.BulletinContent with its route_alert details): the
 * helper's base content, with these waypoints, suspects and text.
 */
export function routeContent(
  options: { title?: string; summary?: string; states?: readonly string[]; waypoints?: readonly Waypoint[]; suspects?: readonly Record<string, unknown>[] } = {},
): Record<string, unknown> {
  const base = bulletinClaims('IDN' as MemberId)['content'] as Record<string, unknown>;
  const route = (typeof base['route_alert'] === 'object' && base['route_alert'] !== null ? base['route_alert'] : {}) as Record<string, unknown>;
  return {
    ...base,
    title: options.title ?? 'Fishing vessels embarking migrants off Lhokseumawe for Malaysia',
    summary: options.summary ?? 'Two wooden fishing vessels observed embarking groups of about 60 people at night.',
    states_concerned: [...(options.states ?? ['IDN', 'MYS'])],
    language: 'en',
    evaluation: base['evaluation'] ?? { source_reliability: 'B', information_assessment: 2 },
    validity: base['validity'] ?? { from: '2026-11-01' },
    route_alert: { period: { from: '2026-11-01' }, ...route, waypoints: (options.waypoints ?? DEFAULT_WAYPOINTS).map((w) => ({ ...w })) },
    ...(options.suspects === undefined ? {} : { suspects: options.suspects.map((s) => ({ ...s })) }),
  };
}

/** Claims of a route alert from `member`, at hub time `now`. */
export function routeClaims(member: MemberId, content: Record<string, unknown>, overrides: Record<string, unknown> = {}, now = new Date()): Record<string, unknown> {
  const personal = Array.isArray(content['suspects']) && content['suspects'].length > 0;
  return bulletinClaims(
    member,
    {
      handling: { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS', 'AUS'], agencies: [] }, code: 'H2', personal_data: personal },
      content,
      ...overrides,
    },
    now,
  );
}

/** An update or correction of `supersedes`: `claims` with the lifecycle claim added. */
export function followUpClaims(claims: Record<string, unknown>, action: Exclude<LifecycleAction, 'withdrawal'>, supersedes: string, reason?: string): Record<string, unknown> {
  return { ...claims, lifecycle: { action, supersedes, ...(reason === undefined ? {} : { reason }) } };
}

/** The claims of a withdrawal of `original` (its claims as signed), made as a node makes them. */
export function withdrawalClaims(member: MemberId, originalId: string, original: Record<string, unknown>, reason: string, now = new Date()): Record<string, unknown> {
  const content = original['content'] as Record<string, unknown>;
  const handling = original['handling'] as Record<string, unknown>;
  const draft = withdrawalDraft(
    {
      id: originalId,
      category: original['category'] as never,
      handling: { tlp: String(handling['tlp']), releasable_to: handling['releasable_to'], code: String(handling['code']) },
      title: String(content['title']),
      statesConcerned: content['states_concerned'] as string[],
      language: String(content['language']),
      expiresAt: Number(original['exp']),
    },
    reason,
    epochSeconds(now),
  );
  return draftToClaims(parseDraft(draft), memberUri(member), { jti: newJti(), issuedAt: epochSeconds(now) });
}

/** Publishes signed claims; resolves with the receipt. */
export async function publish(node: HubConnection, key: SigningKey, claims: Record<string, unknown>): Promise<Receipt> {
  const response = await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, claims) }));
  if (response.receipt === undefined) throw new Error('no receipt');
  return response.receipt;
}

/** Every delivery an agency's backlog holds (from cursor 0), up to `caught_up`. */
export async function backlog(agency: HubConnection, agencyId: string): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId, afterCursor: 0n, afterNotice: 2n ** 62n }));
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (m: SubscribeResponse) => {
      if (m.event.case === 'delivery') deliveries.push(m.event.value);
      if (m.event.case === 'caughtUp') resolve();
    });
    stream.on('error', (e: { code?: number }) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  });
  stream.cancel();
  return deliveries;
}

/** The Disclosures of a delivered presentation (`jwt~d1~…~dn~kb`). */
export function disclosuresOf(sdJwt: Uint8Array): string[] {
  const parts = Buffer.from(sdJwt).toString('latin1').split('~');
  return parts.slice(1, -1);
}

/** Content of a modus-operandi notice: the route content's common fields with its own details. */
export function modusContent(options: Parameters<typeof routeContent>[0] = {}): Record<string, unknown> {
  const { route_alert: _route, ...common } = routeContent(options);
  return { ...common, modus_operandi: { methods: ['fishing_vessel'] } };
}
