/**
 * The operator's side of sharing agreements: each change is a statement signed with the private
 * key of the operator's own certificate, sent over a connection made with that certificate.
 */
import { createPrivateKey } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { agreementToJson, parseAgreement } from '../core/agreement.js';
import { signAgreementStatement } from '../core/agreement-statement.js';
import { epochSeconds } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import { fail } from '../core/errors.js';
import type { OperatorId } from '../core/ids.js';
import { ChangeAgreementRequestSchema, GetAgreementRequestSchema, PolicyService } from '../gen/corridor/v1/policy_pb.js';
import type { AgreementVersion } from '../gen/corridor/v1/policy_pb.js';
import { callErrorToCorridorError } from './hub-errors.js';
import type { HubConnection, TlsMaterial } from './hub-client.js';

export type AgreementChangeRequest =
  /** Adds the agreement (version 1) or, with `amend`, records its next version. */
  | { readonly action: 'put'; readonly agreement: unknown; readonly amend: boolean }
  | { readonly action: 'end'; readonly agreementId: string; readonly reason: string };

/** The versions of an agreement at the hub, oldest first; empty when it has none. */
export async function agreementVersions(hub: HubConnection, agreementId: string): Promise<AgreementVersion[]> {
  try {
    const response = await hub.policy.unary(PolicyService.method.getAgreement, create(GetAgreementRequestSchema, { agreementId }), { deadlineMs: 15_000 });
    return response.versions;
  } catch (error) {
    const coded = callErrorToCorridorError(error, 'the hub');
    if (coded.code === 'NOT_FOUND') return [];
    throw coded;
  }
}

/**
 * Signs and sends one change. The version is the hub's latest plus one, read just before: a
 * change made meanwhile by another operator makes the hub refuse this one (VERSION_CONFLICT)
 * rather than overwrite it.
 */
export async function changeAgreementAtHub(
  hub: HubConnection,
  operator: { readonly id: OperatorId; readonly tls: TlsMaterial },
  change: AgreementChangeRequest,
  clock: Clock,
): Promise<AgreementVersion> {
  const id = change.action === 'put' ? parseAgreement(change.agreement).id : change.agreementId;
  // Adding needs no lookup: version 1 is refused with VERSION_CONFLICT if the id exists, and a
  // lookup of an id that does not exist yet would only leave a NOT_FOUND refusal in the audit log.
  const versions = change.action === 'put' && !change.amend ? [] : await agreementVersions(hub, id);
  const latest = versions[versions.length - 1];
  if (versions.length === 0 && change.action === 'end') fail('NOT_FOUND', `there is no agreement ${id} to end`);
  if (versions.length === 0 && change.action === 'put' && change.amend) fail('NOT_FOUND', `there is no agreement ${id} to amend; add it`);
  if (latest?.ended === true) fail('VERSION_CONFLICT', `agreement ${id} ended at version ${versions.length}; an ended agreement is not reopened: add it under a new id`);
  const version = versions.length + 1;
  const payload =
    change.action === 'put'
      ? { action: 'put', version, agreement: agreementToJson(parseAgreement(change.agreement)), iat: epochSeconds(clock.now()) }
      : { action: 'end', version, agreement_id: id, reason: change.reason, iat: epochSeconds(clock.now()) };
  const statement = await signAgreementStatement(createPrivateKey(operator.tls.key), operator.id, payload);
  try {
    const response = await hub.policy.unary(PolicyService.method.changeAgreement, create(ChangeAgreementRequestSchema, { statement }), { deadlineMs: 15_000 });
    return response.version ?? fail('INTERNAL', 'the hub answered without the recorded version');
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}
