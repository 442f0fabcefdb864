/**
 * Where a bulletin carries personal data, and of which kind. Every personal-data field is a
 * selectively disclosable claim (RFC 9901): the originator's node makes exactly these paths
 * disclosable, the hub refuses a bulletin that carries one of them in clear or makes anything
 * else disclosable, and the policy decides per kind which Disclosures an agency receives.
 *
 * Paths are RFC 6901 JSON Pointers into the signed claims; array indexes count positions in the
 * signed array (see `PlacedDisclosure.path`).
 */
import { fail } from './errors.js';
import type { JsonObject, JsonValue, PlacedDisclosure } from './sd-jwt.js';
import type { PersonalDataKind } from './vocabulary.js';

/** Fields of a suspect that are one disclosable property each. */
const SUSPECT_PROPERTIES: Readonly<Record<string, PersonalDataKind>> = { name: 'identity', nationality: 'identity' };
/** Lists in a suspect whose elements are one disclosable element each. */
const SUSPECT_LISTS: Readonly<Record<string, PersonalDataKind>> = {
  aliases: 'identity',
  phones: 'contact',
  accounts: 'financial',
  documents: 'document',
};
/** Lists in the content whose elements are one disclosable element each. */
const CONTENT_LISTS: Readonly<Record<string, PersonalDataKind>> = { conveyances: 'conveyance', migrants: 'migrant' };

const SUSPECT_FIELD = /^\/content\/suspects\/(?:0|[1-9][0-9]*)\/([a-z_]+)$/;
const SUSPECT_ELEMENT = /^\/content\/suspects\/(?:0|[1-9][0-9]*)\/([a-z_]+)\/(?:0|[1-9][0-9]*)$/;
const CONTENT_ELEMENT = /^\/content\/([a-z_]+)\/(?:0|[1-9][0-9]*)$/;

/** A personal-data field: where it is and what kind of data it holds. */
export interface PersonalDataField {
  readonly path: string;
  readonly kind: PersonalDataKind;
}

/** The kind of personal data at a disclosable path; undefined for a path that is not personal data. */
export function personalDataKindOf(path: string): PersonalDataKind | undefined {
  const field = SUSPECT_FIELD.exec(path);
  if (field !== null) return own(SUSPECT_PROPERTIES, field[1]);
  const element = SUSPECT_ELEMENT.exec(path);
  if (element !== null) return own(SUSPECT_LISTS, element[1]);
  const listed = CONTENT_ELEMENT.exec(path);
  if (listed !== null) return own(CONTENT_LISTS, listed[1]);
  return undefined;
}

function own(table: Readonly<Record<string, PersonalDataKind>>, name: string | undefined): PersonalDataKind | undefined {
  return name !== undefined && Object.hasOwn(table, name) ? table[name] : undefined;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The personal-data fields of clear claims, as the originator's node makes them disclosable:
 * every path {@link personalDataKindOf} names, in document order.
 */
export function personalDataFields(claims: JsonObject): PersonalDataField[] {
  const fields: PersonalDataField[] = [];
  const content = claims['content'];
  if (!isObject(content)) return fields;
  const suspects = content['suspects'];
  if (Array.isArray(suspects)) {
    suspects.forEach((suspect: JsonValue, index: number) => {
      if (!isObject(suspect)) return;
      for (const [name, kind] of Object.entries(SUSPECT_PROPERTIES)) {
        if (Object.hasOwn(suspect, name)) fields.push({ path: `/content/suspects/${index}/${name}`, kind });
      }
      for (const [name, kind] of Object.entries(SUSPECT_LISTS)) {
        const list = suspect[name];
        if (Array.isArray(list)) list.forEach((_: JsonValue, element: number) => fields.push({ path: `/content/suspects/${index}/${name}/${element}`, kind }));
      }
    });
  }
  for (const [name, kind] of Object.entries(CONTENT_LISTS)) {
    const list = content[name];
    if (Array.isArray(list)) list.forEach((_: JsonValue, element: number) => fields.push({ path: `/content/${name}/${element}`, kind }));
  }
  return fields;
}

/** A Disclosure the hub may forward, with the kind of personal data it holds. */
export interface ClassifiedDisclosure {
  readonly encoded: string;
  readonly digest: string;
  readonly path: string;
  readonly kind: PersonalDataKind;
}

/**
 * Checks a verified bulletin's layout of personal data and classifies its Disclosures:
 *  - the signed payload carries no personal-data field in clear (each suspect's `name` and
 *    `nationality` only as digests, each element of a personal-data list only as `{"...": d}`);
 *  - every Disclosure sits at a personal-data path, at top level (not nested in another one).
 * Refuses with `CONTENT_INVALID` naming the field; the hub cannot enforce a field it cannot see.
 */
export function classifyDisclosures(signedPayload: unknown, disclosed: readonly PlacedDisclosure[]): ClassifiedDisclosure[] {
  refuseClearPersonalData(signedPayload);
  return disclosed.map((disclosure) => {
    const kind = personalDataKindOf(disclosure.path);
    if (kind === undefined || disclosure.parent !== undefined) {
      fail('CONTENT_INVALID', `bulletin claims invalid: ${disclosure.path}: only personal-data fields may be selectively disclosable, and this is not one`);
    }
    return { encoded: disclosure.encoded, digest: disclosure.digest, path: disclosure.path, kind };
  });
}

function refuseClearPersonalData(signedPayload: unknown): void {
  if (typeof signedPayload !== 'object' || signedPayload === null || Array.isArray(signedPayload)) return;
  const content = (signedPayload as Record<string, unknown>)['content'];
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return;
  const record = content as Record<string, unknown>;
  const clear = (path: string): never =>
    fail('CONTENT_INVALID', `bulletin claims invalid: ${path}: personal data must be selectively disclosable (an SD-JWT Disclosure), not in clear`);
  const placeholdersOnly = (list: unknown, path: string): void => {
    if (!Array.isArray(list)) return;
    list.forEach((element: unknown, index) => {
      const isPlaceholder =
        typeof element === 'object' && element !== null && !Array.isArray(element) && Object.keys(element).length === 1 && Object.hasOwn(element, '...');
      if (!isPlaceholder) clear(`${path}/${index}`);
    });
  };
  const suspects = record['suspects'];
  if (Array.isArray(suspects)) {
    suspects.forEach((suspect: unknown, index) => {
      if (typeof suspect !== 'object' || suspect === null || Array.isArray(suspect)) return;
      for (const name of Object.keys(SUSPECT_PROPERTIES)) {
        if (Object.hasOwn(suspect, name)) clear(`/content/suspects/${index}/${name}`);
      }
      for (const name of Object.keys(SUSPECT_LISTS)) placeholdersOnly((suspect as Record<string, unknown>)[name], `/content/suspects/${index}/${name}`);
    });
  }
  for (const name of Object.keys(CONTENT_LISTS)) placeholdersOnly(record[name], `/content/${name}`);
}
