/**
 * Explain and simulate: the access policy's decisions told field by field. Explain recomputes a
 * past (or hypothetical) decision from the bulletin's handling, its personal-data layout and the
 * agreements in force at the time, and shows it beside the decision recorded at publication.
 * Simulate decides for a draft that has not been published, from its handling and field layout
 * only: the draft's content never leaves the member's node.
 */
import { agreementsInForce } from '../core/agreement.js';
import { parseBulletinClaims, parseHandling } from '../core/bulletin.js';
import type { Handling } from '../core/bulletin.js';
import { CorridorError, fail } from '../core/errors.js';
import { asAgencyId, isAgencyId, isMemberId, parseBulletinId, printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { parseCompactJws } from '../core/jws.js';
import { personalDataKindOf } from '../core/personal-data.js';
import type { PersonalDataField } from '../core/personal-data.js';
import { decide, handlingInstruction } from '../core/policy.js';
import type { Decision } from '../core/policy.js';
import type { AgencyRecord } from '../core/region.js';
import { processDisclosures } from '../core/sd-jwt.js';
import { parseStrictJson } from '../core/strict-json.js';
import { BULLETIN_CATEGORIES } from '../core/vocabulary.js';
import type { BulletinCategory } from '../core/vocabulary.js';
import { loadAgreementVersions } from './agreements.js';
import type { PrincipalOf } from './authn.js';
import type { HubContext } from './context.js';
import { recordRefusal } from './refusals.js';
import { findBulletinById, findDecision, listDisclosureFields } from './store.js';

export interface FieldVerdict {
  readonly path: string;
  readonly kind: string;
  readonly released: boolean;
  readonly reason: string;
}

export interface Explanation {
  readonly agencyId: string;
  readonly decision: Decision;
  readonly fields: readonly FieldVerdict[];
  readonly handlingInstruction: string;
  readonly at: Date;
  readonly recorded: { decision: string; code: string; reason: string; policyVersion: string; auditPosition: bigint } | undefined;
}

interface PolicyInput {
  readonly issuer: MemberId;
  readonly category: BulletinCategory;
  readonly handling: Handling;
  readonly fields: readonly PersonalDataField[];
}

function explainFor(agency: AgencyRecord, input: PolicyInput, inForce: Parameters<typeof decide>[2], at: Date): Omit<Explanation, 'recorded'> {
  const decision = decide(agency, { ...input, personalData: new Set(input.fields.map((f) => f.kind)) }, inForce);
  const fields = input.fields.map((field): FieldVerdict => {
    if (decision.kind === 'deny') return { ...field, released: false, reason: 'the bulletin is not delivered to this agency' };
    if (decision.disclose.has(field.kind)) return { ...field, released: true, reason: `${field.kind} data is released to this agency` };
    const withheld = decision.withheld.find((w) => w.kind === field.kind);
    return { ...field, released: false, reason: withheld?.reason ?? 'withheld' };
  });
  return { agencyId: agency.id, decision, fields, handlingInstruction: handlingInstruction(input.handling.code, input.handling.restrictions), at };
}

/** Why a bulletin was (or, at `atMs`, would be) delivered to an agency. Operators only. */
export async function explainDelivery(
  ctx: HubContext,
  operator: PrincipalOf<'operator'>,
  request: { bulletinId: string; agencyId: string; atMs?: bigint | undefined },
): Promise<Explanation> {
  try {
    parseBulletinId(request.bulletinId);
    if (!isAgencyId(request.agencyId)) fail('REQUEST_INVALID', `"${printable(request.agencyId)}" is not an agency id (OWNER:unit)`);
    const bulletin = await findBulletinById(ctx.db, request.bulletinId);
    if (bulletin === undefined) fail('NOT_FOUND', `there is no bulletin ${request.bulletinId}`);
    const agency = ctx.registry().agencies.get(asAgencyId(request.agencyId));
    if (agency === undefined) fail('NOT_FOUND', `there is no active agency ${request.agencyId}`);
    // The signed skeleton with every selectively disclosable claim left out: what the policy reads.
    const jws = parseCompactJws(bulletin.jws, Number.MAX_SAFE_INTEGER);
    const claims = parseBulletinClaims(processDisclosures(jws.payload, []).payload);
    const fields = (await listDisclosureFields(ctx.db, bulletin.sequence)).map(({ path, kind }) => ({ path, kind }));
    const at = request.atMs === undefined ? bulletin.hubTime : new Date(Number(request.atMs));
    const inForce = agreementsInForce(await loadAgreementVersions(ctx.db), at);
    const explained = explainFor(agency, { issuer: claims.issuer, category: claims.category, handling: claims.handling, fields }, inForce, at);
    return { ...explained, recorded: await findDecision(ctx.db, agency.id, bulletin.sequence) };
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, operator, 'Explain', error);
    throw error;
  }
}

/**
 * Who would receive a draft published now, and which fields: one explanation per registered
 * agency. A member simulates its own drafts; an operator names the issuer.
 */
export async function simulateDraft(
  ctx: HubContext,
  principal: PrincipalOf<'member' | 'operator'>,
  request: { issuer: string; category: string; handlingJson: string; fields: readonly { path: string; kind: string }[] },
): Promise<{ at: Date; explanations: Explanation[] }> {
  try {
    const issuer = simulatedIssuer(principal, request.issuer);
    if (!ctx.registry().members.has(issuer)) fail('NOT_FOUND', `there is no member ${issuer}`);
    const category = BULLETIN_CATEGORIES.find((c) => c === request.category);
    if (category === undefined) fail('REQUEST_INVALID', `"${printable(request.category)}" is not a bulletin category; use one of ${BULLETIN_CATEGORIES.join(', ')}`);
    const handling = parseHandling(parseStrictJson(request.handlingJson, 'handling_json'));
    if (request.fields.length > 1000) fail('REQUEST_INVALID', `${request.fields.length} personal-data fields; at most 1000`);
    const fields = request.fields.map(({ path, kind }): PersonalDataField => {
      const expected = personalDataKindOf(path);
      if (expected === undefined || expected !== kind) {
        fail('REQUEST_INVALID', `field ${printable(path)} is not a personal-data field of kind "${printable(kind, 20)}"`);
      }
      return { path, kind: expected };
    });
    const at = ctx.clock.now();
    const inForce = agreementsInForce(await loadAgreementVersions(ctx.db), at);
    const explanations = [...ctx.registry().agencies.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((agency) => ({ ...explainFor(agency, { issuer, category, handling, fields }, inForce, at), recorded: undefined }));
    return { at, explanations };
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, principal, 'Simulate', error);
    throw error;
  }
}

function simulatedIssuer(principal: PrincipalOf<'member' | 'operator'>, requested: string): MemberId {
  if (principal.kind === 'member') {
    if (requested !== '' && requested !== principal.id) {
      fail('NOT_YOUR_IDENTITY', `you are ${principal.id} and may simulate only your own drafts, not ${printable(requested)}'s`);
    }
    return principal.id;
  }
  if (!isMemberId(requested)) fail('REQUEST_INVALID', 'an operator names the issuing member (three capital letters) to simulate a draft');
  return requested;
}
