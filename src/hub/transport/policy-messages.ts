/** Encoding of agreement versions and policy explanations as wire messages. */
import { create } from '@bufbuild/protobuf';
import { agreementToJson } from '../../core/agreement.js';
import { AgreementVersionSchema, ExplanationSchema, FieldReleaseSchema, RecordedDecisionSchema } from '../../gen/corridor/v1/policy_pb.js';
import type { AgreementVersion, Explanation } from '../../gen/corridor/v1/policy_pb.js';
import type { StoredAgreementVersion } from '../agreements.js';
import type { Explanation as PolicyExplanation } from '../explain.js';

export function agreementMessage(version: StoredAgreementVersion, inForce: boolean): AgreementVersion {
  return create(AgreementVersionSchema, {
    agreementId: version.agreement.id,
    version: version.version,
    agreementJson: JSON.stringify(agreementToJson(version.agreement)),
    ended: version.ended,
    endReason: version.endReason ?? '',
    operator: version.operator,
    recordedMs: BigInt(version.recordedAt.getTime()),
    auditPosition: version.auditPosition,
    statement: version.statement,
    inForce,
  });
}

export function explanationMessage(explanation: PolicyExplanation): Explanation {
  const { decision, recorded } = explanation;
  return create(ExplanationSchema, {
    agencyId: explanation.agencyId,
    decision: decision.kind,
    code: decision.code,
    reason: decision.reason,
    policyVersion: decision.policyVersion,
    agreements: [...decision.agreements],
    fields: explanation.fields.map((field) => create(FieldReleaseSchema, field)),
    handlingInstruction: explanation.handlingInstruction,
    atMs: BigInt(explanation.at.getTime()),
    ...(recorded === undefined
      ? {}
      : {
          recorded: create(RecordedDecisionSchema, {
            decision: recorded.decision,
            code: recorded.code,
            reason: recorded.reason,
            policyVersion: recorded.policyVersion,
            auditPosition: recorded.auditPosition,
          }),
        }),
  });
}
