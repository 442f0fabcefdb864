/**
 * JSON parsing that refuses duplicate member names. RFC 7515 §10.12 and RFC 8725 §3.10: a JWS
 * header or payload with duplicate names is ambiguous (parsers disagree on which one wins), so
 * it must be rejected rather than resolved.
 */
import { fail } from './errors.js';
import { printable } from './ids.js';

/** Parses `text` as JSON; throws `JWS_MALFORMED` naming `what` on invalid JSON or duplicate names. */
export function parseStrictJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail('JWS_MALFORMED', `${what} is not valid JSON`);
  }
  const duplicate = findDuplicateName(text);
  // The name is attacker-controlled: shortened and stripped of control characters.
  if (duplicate !== undefined) fail('JWS_MALFORMED', `${what} has the member name "${printable(duplicate, 40)}" twice`);
  return value;
}

/**
 * Scans already-valid JSON text and returns the first member name that occurs twice in one
 * object. Only called after `JSON.parse` succeeded, so the grammar is known to be valid.
 */
function findDuplicateName(text: string): string | undefined {
  interface Frame {
    readonly isObject: boolean;
    readonly names: Set<string>;
    /** Inside an object: whether the next string is a member name rather than a value. */
    expectingName: boolean;
  }
  const frames: Frame[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const top = frames[frames.length - 1];
    if (ch === '{' || ch === '[') {
      frames.push({ isObject: ch === '{', names: new Set(), expectingName: ch === '{' });
      i++;
    } else if (ch === '}' || ch === ']') {
      frames.pop();
      i++;
    } else if (ch === ',') {
      if (top?.isObject === true) top.expectingName = true;
      i++;
    } else if (ch === ':') {
      if (top !== undefined) top.expectingName = false;
      i++;
    } else if (ch === '"') {
      const end = endOfString(text, i);
      if (top?.isObject === true && top.expectingName) {
        const name = JSON.parse(text.slice(i, end)) as string;
        if (top.names.has(name)) return name;
        top.names.add(name);
      }
      i = end;
    } else {
      i++;
    }
  }
  return undefined;
}

function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\') i += 2;
    else if (ch === '"') return i + 1;
    else i++;
  }
  return i;
}
