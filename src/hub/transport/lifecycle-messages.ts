/** A bulletin's lifecycle status as a protobuf message. */
import { create } from '@bufbuild/protobuf';
import type { BulletinState as DomainState, BulletinStatus, LifecycleAction as DomainAction } from '../../core/lifecycle.js';
import { BulletinState, BulletinStatusSchema, LifecycleAction } from '../../gen/corridor/v1/exchange_pb.js';
import type { BulletinStatus as BulletinStatusMessage } from '../../gen/corridor/v1/exchange_pb.js';

export const ACTIONS: Readonly<Record<DomainAction, LifecycleAction>> = {
  update: LifecycleAction.UPDATE,
  correction: LifecycleAction.CORRECTION,
  withdrawal: LifecycleAction.WITHDRAWAL,
};

export const STATES: Readonly<Record<DomainState, BulletinState>> = {
  active: BulletinState.ACTIVE,
  superseded: BulletinState.SUPERSEDED,
  withdrawn: BulletinState.WITHDRAWN,
};

export function statusMessage(status: BulletinStatus): BulletinStatusMessage {
  return create(BulletinStatusSchema, {
    state: STATES[status.state],
    ...(status.latest === undefined ? {} : { latestBulletinId: status.latest.id, latestAction: ACTIONS[status.latest.action] }),
    ...(status.followUp === undefined ? {} : { supersedes: status.followUp.supersedes, action: ACTIONS[status.followUp.action] }),
  });
}
