/**
 * The lifecycle of a member signing key, and the judgment of a signature at the time it was
 * logged. Pure: the hub and the recipients apply the same rules to what each of them knows.
 *
 *   pending ──approve──▶ active ──(successor approved)──▶ retired ──revoke──▶ revoked
 *      │                   └──────────────revoke──────────────────────────────▲
 *      └──reject──▶ rejected
 *
 * A signature is judged at the bulletin's **logged** hub time (the receipt's `hub_time_ms`),
 * never at its `iat`, which the signer chose: a key retired later still verifies what was logged
 * while it was active; nothing logged before its activation or after its retirement or
 * revocation verifies; a key revoked as compromised from a date marks what was logged from then on.
 */
import { fail } from './errors.js';
import { printable } from './ids.js';

export const KEY_STATES = ['pending', 'active', 'retired', 'revoked', 'rejected'] as const;
export type KeyState = (typeof KEY_STATES)[number];

export function isKeyState(value: string): value is KeyState {
  return (KEY_STATES as readonly string[]).includes(value);
}

/** The transitions the directory allows; the hub database enforces the same with a trigger. */
const TRANSITIONS: Readonly<Record<KeyState, readonly KeyState[]>> = {
  pending: ['active', 'rejected'],
  active: ['retired', 'revoked'],
  retired: ['revoked'],
  revoked: [],
  rejected: [],
};

export function canTransition(from: KeyState, to: KeyState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** When a key entered each state, as far as the one who judges knows. */
export interface KeyValidity {
  readonly activatedAt?: Date | undefined;
  readonly retiredAt?: Date | undefined;
  readonly revokedAt?: Date | undefined;
  /** Set only on a revoked key: what was logged at or after this time is compromised. */
  readonly compromisedSince?: Date | undefined;
}

/** Why a bulletin verified with a key must no longer be relied on. */
export interface KeyCompromise {
  readonly kid: string;
  readonly since: Date;
  readonly revokedAt: Date;
}

export type KeyVerdict = { readonly kind: 'valid' } | { readonly kind: 'compromised'; readonly compromise: KeyCompromise };

/**
 * Judges a key for a signature logged at `loggedAt`.
 *
 * @throws CorridorError `KEY_PENDING` when it was logged before the key was active,
 *   `KEY_RETIRED` when at or after its retirement, `KEY_REVOKED` when at or after its revocation.
 */
export function judgeKeyAt(kid: string, validity: KeyValidity, loggedAt: Date): KeyVerdict {
  const at = loggedAt.getTime();
  const shown = printable(kid, 50);
  if (validity.activatedAt !== undefined && at < validity.activatedAt.getTime()) {
    fail('KEY_PENDING', `key ${shown} was not yet active at ${loggedAt.toISOString()} (active from ${validity.activatedAt.toISOString()})`);
  }
  if (validity.revokedAt !== undefined && at >= validity.revokedAt.getTime()) {
    fail('KEY_REVOKED', `key ${shown} was revoked at ${validity.revokedAt.toISOString()}; a signature logged at ${loggedAt.toISOString()} does not count`);
  }
  if (validity.retiredAt !== undefined && at >= validity.retiredAt.getTime()) {
    fail('KEY_RETIRED', `key ${shown} was retired at ${validity.retiredAt.toISOString()}; a signature logged at ${loggedAt.toISOString()} does not count`);
  }
  if (validity.compromisedSince !== undefined && validity.revokedAt !== undefined && at >= validity.compromisedSince.getTime()) {
    return { kind: 'compromised', compromise: { kid, since: validity.compromisedSince, revokedAt: validity.revokedAt } };
  }
  return { kind: 'valid' };
}

/**
 * The refusal for a key that is not active now, for a publication: each state its own code and
 * what to do about it. A rejected key was never a signing key.
 */
export function refuseInactiveKey(member: string, kid: string, state: Exclude<KeyState, 'active'>, at: Date | undefined): never {
  const shown = printable(kid, 50);
  const when = at === undefined ? '' : ` at ${at.toISOString()}`;
  switch (state) {
    case 'pending':
      fail('KEY_PENDING', `key ${shown} of member ${member} is pending: an operator has not approved it yet; sign with your active key until then`);
    case 'retired':
      fail('KEY_RETIRED', `key ${shown} of member ${member} was retired${when}; sign with the member's active key (\`corridor node key status --member ${member}\`)`);
    case 'revoked':
      fail('KEY_REVOKED', `key ${shown} of member ${member} was revoked${when}; it signs nothing any more`);
    case 'rejected':
      fail('JWS_UNKNOWN_KEY', `key ${shown} of member ${member} was rejected by an operator; it never became a signing key`);
  }
}
