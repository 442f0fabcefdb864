/** The key directory and bulletin markings as protobuf messages. */
import { create } from '@bufbuild/protobuf';
import { MemberKeySchema } from '../../gen/corridor/v1/directory_pb.js';
import type { MemberKey } from '../../gen/corridor/v1/directory_pb.js';
import { BulletinMarkingSchema } from '../../gen/corridor/v1/exchange_pb.js';
import type { BulletinMarking as BulletinMarkingMessage } from '../../gen/corridor/v1/exchange_pb.js';
import type { BulletinMarking, StoredMemberKey } from '../key-store.js';

function ms(date: Date | undefined): bigint {
  return date === undefined ? 0n : BigInt(date.getTime());
}

export function memberKeyMessage(key: StoredMemberKey): MemberKey {
  return create(MemberKeySchema, {
    memberId: key.member,
    kid: key.kid,
    alg: key.alg,
    jwkJson: JSON.stringify(key.jwk),
    status: key.state,
    addedMs: ms(key.addedAt),
    activatedMs: ms(key.activatedAt),
    retiredMs: ms(key.retiredAt),
    revokedMs: ms(key.revokedAt),
    rejectedMs: ms(key.rejectedAt),
    compromisedSinceMs: ms(key.compromisedSince),
    rotationStatement: key.rotationStatement ?? new Uint8Array(),
    signedByKid: key.signedByKid ?? '',
    reason: key.reason ?? '',
  });
}

export function markingMessage(marking: BulletinMarking): BulletinMarkingMessage {
  return create(BulletinMarkingSchema, {
    code: marking.code,
    kid: marking.kid,
    compromisedSinceMs: ms(marking.compromisedSince),
    revokedMs: ms(marking.revokedAt),
    reason: marking.reason,
    auditPosition: marking.auditPosition,
  });
}
