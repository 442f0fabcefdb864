/**
 * What the hub indexes of a bulletin for search, read from its signed claims **in clear** (the
 * Issuer-signed JWT with no Disclosure applied), so that nothing withheld from anyone is ever in
 * the bulletin's own index: personal data is only ever in Disclosures, which are indexed apart,
 * one by one, and searched only where released (see `disclosureSearchText`).
 *
 * This is the one place that knows where the content keeps its states, route waypoints and text.
 * It reads defensively, so that it keeps working while the content schema changes: a field of an
 * unexpected shape is skipped, never an error. When the content schema settles, only this module
 * needs to follow it.
 */
import { isMemberId } from './ids.js';

/** The searchable facets of one bulletin. */
export interface SearchFacets {
  readonly category: string;
  /** Member states it concerns: `states_concerned`, its waypoints' states and its originator. */
  readonly states: readonly string[];
  /** States of its route waypoints. */
  readonly waypointStates: readonly string[];
  /** Names of its route waypoints' places, lower-cased and trimmed. */
  readonly waypointPlaces: readonly string[];
  readonly title: string;
  /** Every clear text of the content, for full-text search. */
  readonly text: string;
}

/** Bounds on what one bulletin contributes to the index. */
const MAX_TEXT = 100_000;
const MAX_LIST = 256;
const MAX_DEPTH = 8;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Facets of a bulletin from its clear claims (`processDisclosures(payload, []).payload`).
 * `issuer` is the originating member (from the verified `iss`).
 */
export function searchFacets(claims: unknown, issuer: string): SearchFacets {
  const root = isObject(claims) ? claims : {};
  const content = isObject(root['content']) ? root['content'] : {};
  const category = typeof root['category'] === 'string' ? root['category'] : '';
  const concerned = stringsOf(content['states_concerned']).filter(isMemberId);
  const waypoints = findWaypoints(content);
  const waypointStates = unique(waypoints.map((w) => w.state).filter((s): s is string => s !== undefined));
  const waypointPlaces = unique(waypoints.map((w) => w.place).filter((p): p is string => p !== undefined));
  const title = typeof content['title'] === 'string' ? content['title'] : '';
  const texts: string[] = [];
  collectText(content, texts, 0);
  // The reason of a withdrawal, an update or a correction is clear text of the bulletin too.
  const lifecycle = root['lifecycle'];
  if (isObject(lifecycle) && typeof lifecycle['reason'] === 'string') texts.push(lifecycle['reason']);
  return {
    category,
    states: unique([...concerned, ...waypointStates, ...(isMemberId(issuer) ? [issuer] : [])]),
    waypointStates,
    waypointPlaces,
    title,
    text: texts.join('\n').slice(0, MAX_TEXT),
  };
}

interface Waypoint {
  readonly place: string | undefined;
  readonly state: string | undefined;
}

/**
 * Route waypoints wherever the content keeps them: an array named `waypoints` (at the top of the
 * content or inside a nested object such as `route`), each an object with a place name (`place`,
 * `name`, `location` or `port`) and a state (`state`, `country` or `member`, ISO 3166-1 alpha-3).
 */
function findWaypoints(content: Record<string, unknown>): Waypoint[] {
  const found: Waypoint[] = [];
  const visit = (node: unknown, depth: number): void => {
    if (depth > 3 || !isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'waypoints' && Array.isArray(value)) {
        for (const item of value.slice(0, MAX_LIST)) {
          if (!isObject(item)) continue;
          const place = firstString(item, ['place', 'name', 'location', 'port']);
          const state = firstString(item, ['state', 'country', 'member']);
          found.push({
            place: place === undefined ? undefined : normalisePlace(place),
            state: state !== undefined && isMemberId(state) ? state : undefined,
          });
        }
      } else if (isObject(value)) {
        visit(value, depth + 1);
      }
    }
  };
  visit(content, 0);
  return found;
}

/** A place name as indexed and as searched: trimmed, inner spaces collapsed, lower-cased. */
export function normalisePlace(place: string): string {
  return place.trim().replace(/\s+/g, ' ').toLowerCase().slice(0, 200);
}

function firstString(item: Record<string, unknown>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = item[name];
    if (typeof value === 'string' && value.trim() !== '') return value;
  }
  return undefined;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.slice(0, MAX_LIST).filter((v): v is string => typeof v === 'string') : [];
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * Every string value under `node`, skipping the SD-JWT machinery (`_sd` digests and `...` array
 * elements): in clear claims those are all that is left of a Disclosure, and digests are no text.
 */
function collectText(node: unknown, into: string[], depth: number): void {
  if (depth > MAX_DEPTH || into.length > MAX_LIST * 4) return;
  if (typeof node === 'string') {
    into.push(node);
  } else if (Array.isArray(node)) {
    for (const item of node.slice(0, MAX_LIST)) {
      if (isObject(item) && Object.keys(item).length === 1 && '...' in item) continue;
      collectText(item, into, depth + 1);
    }
  } else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '_sd' || key === '_sd_alg') continue;
      collectText(value, into, depth + 1);
    }
  }
}

/**
 * The text of one Disclosure (RFC 9901 §4.2: base64url JSON `[salt, name, value]` for an object
 * property, `[salt, value]` for an array element): the property value's strings, for the index
 * searched only by agencies the Disclosure was released to. Undefined when it cannot be read.
 */
export function disclosureSearchText(encoded: string): string | undefined {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Json;
  } catch {
    return undefined;
  }
  if (!Array.isArray(decoded) || decoded.length < 2 || decoded.length > 3) return undefined;
  const texts: string[] = [];
  collectText(decoded[decoded.length - 1], texts, 0);
  const text = texts.join('\n').slice(0, MAX_TEXT);
  return text === '' ? undefined : text;
}
