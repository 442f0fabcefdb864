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
import type { JsonObject, PlacedDisclosure } from './sd-jwt.js';
import type { PersonalDataKind } from './vocabulary.js';

/**
 * The catalogue: where personal data sits in a bulletin's claims (`corridor.v1.BulletinContent`,
 * the fields marked PROTECTED in `proto/corridor/v1/bulletin.proto`), as a tree of the names and
 * list positions on the way to each field. A leaf reached by a name is one disclosable object
 * property; a leaf reached through a list (`items`) is one disclosable list element.
 */
type Catalogue = PersonalDataKind | { readonly fields?: Readonly<Record<string, Catalogue>>; readonly items?: Catalogue };

const CATALOGUE: Catalogue = {
  fields: {
    content: {
      fields: {
        suspects: {
          items: {
            fields: {
              name: 'identity',
              nationality: 'identity',
              aliases: { items: 'identity' },
              phones: { items: 'contact' },
              accounts: { items: 'financial' },
              documents: { items: 'document' },
            },
          },
        },
        migrants: { items: 'migrant' },
        conveyances: { items: { fields: { identity: 'conveyance' } } },
        fraudulent_document: { fields: { document_numbers: { items: 'document' } } },
        financial_flow: { fields: { accounts: { items: 'financial' } } },
      },
    },
  },
};

/** A canonical array index in a JSON Pointer: no sign, no leading zero. */
const INDEX = /^(?:0|[1-9][0-9]*)$/;

function fieldsOf(node: Catalogue): Readonly<Record<string, Catalogue>> | undefined {
  return typeof node === 'string' ? undefined : node.fields;
}

function itemsOf(node: Catalogue): Catalogue | undefined {
  return typeof node === 'string' ? undefined : node.items;
}

/** A personal-data field: where it is and what kind of data it holds. */
export interface PersonalDataField {
  readonly path: string;
  readonly kind: PersonalDataKind;
}

/** The kind of personal data at a disclosable path; undefined for a path that is not personal data. */
export function personalDataKindOf(path: string): PersonalDataKind | undefined {
  const [root, ...segments] = path.split('/');
  if (root !== '' || segments.length === 0) return undefined;
  let node: Catalogue = CATALOGUE;
  for (const segment of segments) {
    const fields = fieldsOf(node);
    const items = itemsOf(node);
    if (items !== undefined && INDEX.test(segment)) node = items;
    else if (fields !== undefined && Object.hasOwn(fields, segment)) node = fields[segment] as Catalogue;
    else return undefined;
  }
  return typeof node === 'string' ? node : undefined;
}

/**
 * Visits every catalogued place in `value` that holds something: `onProperty` for a property
 * leaf the object has, `onElement` for each element of a list leaf, in document order.
 */
function walkCatalogue(
  node: Catalogue,
  value: unknown,
  path: string,
  visit: { readonly onProperty: (path: string, kind: PersonalDataKind) => void; readonly onElement: (path: string, kind: PersonalDataKind, element: unknown) => void },
): void {
  const fields = fieldsOf(node);
  if (fields !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [name, child] of Object.entries(fields)) {
      if (!Object.hasOwn(value, name)) continue;
      if (typeof child === 'string') visit.onProperty(`${path}/${name}`, child);
      else walkCatalogue(child, (value as Record<string, unknown>)[name], `${path}/${name}`, visit);
    }
  }
  const items = itemsOf(node);
  if (items !== undefined && Array.isArray(value)) {
    value.forEach((element: unknown, index: number) => {
      if (typeof items === 'string') visit.onElement(`${path}/${index}`, items, element);
      else walkCatalogue(items, element, `${path}/${index}`, visit);
    });
  }
}

/**
 * The personal-data fields of clear claims, as the originator's node makes them disclosable:
 * every path {@link personalDataKindOf} names that the claims hold, in document order.
 */
export function personalDataFields(claims: JsonObject): PersonalDataField[] {
  const fields: PersonalDataField[] = [];
  const add = (path: string, kind: PersonalDataKind): void => {
    fields.push({ path, kind });
  };
  walkCatalogue(CATALOGUE, claims, '', { onProperty: add, onElement: add });
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
  const clear = (path: string): never =>
    fail('CONTENT_INVALID', `bulletin claims invalid: ${path}: personal data must be selectively disclosable (an SD-JWT Disclosure), not in clear`);
  walkCatalogue(CATALOGUE, signedPayload, '', {
    // In the signed payload a disclosable property is only a digest in `_sd`: present by name, it is in clear.
    onProperty: clear,
    // A disclosable element is only `{"...": digest}`.
    onElement: (path, _kind, element) => {
      const isPlaceholder =
        typeof element === 'object' && element !== null && !Array.isArray(element) && Object.keys(element).length === 1 && Object.hasOwn(element, '...');
      if (!isPlaceholder) clear(path);
    },
  });
}
