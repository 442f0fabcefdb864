/**
 * The stream frame of one delivery, `SubscribeResponse{delivery}`, written by hand: every
 * delivery of a replay or a live fan-out is encoded once per agency, and protobuf-es's reflective
 * `create` + `toBinary` of a Delivery cost ~33 µs of the ~60 µs of hub time per replayed delivery
 * (a profile of a replay window, BENCHMARKS.md). The bytes are exactly those of
 * `toBinary(SubscribeResponseSchema, …deliveryMessage(…))`: a property test checks it over random
 * deliveries (tests/hub/delivery-frame.test.ts). The presentation's two parts are copied straight
 * into the frame, and the frame is written behind room for its own tag and length, so the large
 * bytes are copied once.
 */
import { bulletinStatus } from '../../core/lifecycle.js';
import type { BulletinStatus } from '../../core/lifecycle.js';
import { ProtoWriter } from '../../core/proto-writer.js';
import type { BulletinMarking } from '../key-store.js';
import type { DeliveryGrant, StoredBulletin } from '../store.js';
import { ACTIONS, STATES } from './lifecycle-messages.js';

/** Room for the SubscribeResponse's tag and the Delivery's length in front of the Delivery. */
const FRAME_HEADROOM = 10;
/** Bytes of a delivery besides its presentation and receipt JWS (ids, reasons, status, tags). */
const SMALL_FIELDS_ESTIMATE = 512;

/** `SubscribeResponse{ delivery: deliveryMessage(bulletin, grant, kbJwt, marking, status) }`, encoded. */
export function encodeDeliveryFrame(bulletin: StoredBulletin, grant: DeliveryGrant, kbJwt: Uint8Array, marking: BulletinMarking | undefined, status: BulletinStatus | undefined): Uint8Array {
  const { released } = grant.release;
  const delivery = new ProtoWriter(released.byteLength + kbJwt.byteLength + bulletin.receipt.byteLength + SMALL_FIELDS_ESTIMATE, FRAME_HEADROOM);
  delivery.varint(1, bulletin.sequence).string(2, bulletin.id).bytesOf(3, [released, kbJwt]).message(4, encodeReceipt(bulletin)).string(5, grant.reason).string(6, grant.policyVersion);
  for (const withheld of grant.withheld) delivery.message(7, new ProtoWriter(64).string(1, withheld.kind).string(2, withheld.reason).finish());
  delivery.strings(8, grant.agreements);
  if (marking !== undefined) delivery.message(9, encodeMarking(marking));
  delivery.message(10, encodeStatus(status ?? bulletinStatus(bulletin.id, undefined, undefined)));
  return delivery.finishAsField(1);
}

/** `Receipt` as receiptMessage builds it. */
function encodeReceipt(bulletin: StoredBulletin): Uint8Array {
  return new ProtoWriter(bulletin.receipt.byteLength + 128)
    .string(1, bulletin.id)
    .bytes(2, bulletin.receipt)
    .varint(3, bulletin.sequence)
    .varint(4, bulletin.auditPosition)
    .varint(5, bulletin.hubTime.getTime())
    .bytes(6, bulletin.jwsSha256)
    .finish();
}

/** `BulletinMarking` as markingMessage builds it. */
function encodeMarking(marking: BulletinMarking): Uint8Array {
  return new ProtoWriter(128 + marking.reason.length)
    .string(1, marking.code)
    .string(2, marking.kid)
    .varint(3, marking.compromisedSince.getTime())
    .varint(4, marking.revokedAt.getTime())
    .string(5, marking.reason)
    .varint(6, marking.auditPosition)
    .finish();
}

/** `BulletinStatus` as statusMessage builds it. */
function encodeStatus(status: BulletinStatus): Uint8Array {
  const writer = new ProtoWriter(128).varint(1, STATES[status.state]);
  if (status.latest !== undefined) writer.string(2, status.latest.id).varint(3, ACTIONS[status.latest.action]);
  if (status.followUp !== undefined) writer.string(4, status.followUp.supersedes).varint(5, ACTIONS[status.followUp.action]);
  return writer.finish();
}
