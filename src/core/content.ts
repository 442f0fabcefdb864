/**
 * A bulletin's `content` claim: the JSON form of `corridor.v1.BulletinContent`
 * (`proto/corridor/v1/bulletin.proto`) and the protovalidate rules written there. The member's
 * node applies them before it signs, the hub after it has verified the signature, a recipient to
 * what was disclosed to it; all three call {@link parseContent}.
 *
 * The JSON is the proto3 JSON mapping with the proto field names (snake_case) and nothing looser:
 * the mapping would also take lowerCamelCase names, numbers as strings, `null` and enum numbers,
 * and a second spelling of a field would let personal data slip past the catalogue of
 * `personal-data.ts`, which knows the proto names. So the shape is checked first, field by field
 * against the descriptor, then converted with `fromJson`, then validated.
 */
import { createRegistry, fromJson, ScalarType, toJson } from '@bufbuild/protobuf';
import type { DescField, DescMessage, JsonValue } from '@bufbuild/protobuf';
import { pathToString } from '@bufbuild/protobuf/reflect';
import { CompilationError, createValidator } from '@bufbuild/protovalidate';
import type { ValidationResult, Validator, Violation } from '@bufbuild/protovalidate';
import { BulletinContentSchema, WithdrawalContentSchema } from '../gen/corridor/v1/bulletin_pb.js';
import type { BulletinContent } from '../gen/corridor/v1/bulletin_pb.js';
import { file_corridor_v1_rules } from '../gen/corridor/v1/rules_pb.js';
import { fail } from './errors.js';
import { schemaRegexMatch } from './schema-regex.js';
import { printable } from './ids.js';
import type { BulletinCategory } from './vocabulary.js';
import { BULLETIN_CATEGORIES } from './vocabulary.js';

export type { BulletinContent } from '../gen/corridor/v1/bulletin_pb.js';

/** How many violations a refusal lists; the rest are counted. */
const MAX_LISTED = 5;

/**
 * The validator, with Corridor's own predefined rules (`rules.proto`) registered and the schema's
 * patterns matched natively (`schema-regex.ts`). Built once: it is pure and caches the rules it
 * has compiled per message type.
 */
let validator: Validator | undefined;
function contentValidator(): Validator {
  validator ??= createValidator({ registry: createRegistry(file_corridor_v1_rules), regexMatch: schemaRegexMatch });
  return validator;
}

/** What the content must be: a category's full content, or the bare content of a withdrawal. */
export interface ContentKind {
  readonly category: BulletinCategory;
  readonly withdrawal: boolean;
}

/**
 * Reads and validates a `content` claim.
 *
 * @param value the claim as JSON (attacker-controlled at the hub).
 * @param prefix starts every refusal message (`bulletin claims invalid`, `bulletin draft invalid`).
 * @throws CorridorError `CONTENT_INVALID` naming the field and the rule:
 *   `content.route_alert.waypoints[2].role: must be in list [origin, …] [string.in]`.
 */
export function parseContent(value: unknown, kind: ContentKind, prefix: string): BulletinContent {
  const schema = kind.withdrawal ? WithdrawalContentSchema : BulletinContentSchema;
  const shapeProblems: string[] = [];
  checkShape(schema, value, 'content', shapeProblems);
  if (shapeProblems.length > 0) refuseContent(prefix, shapeProblems);

  let content: BulletinContent;
  let result: ValidationResult;
  try {
    // `value` is JSON of exactly the message's shape (checked above), so fromJson's own refusals
    // are unreachable; the catch is a backstop.
    if (kind.withdrawal) {
      result = contentValidator().validate(WithdrawalContentSchema, fromJson(WithdrawalContentSchema, value as JsonValue));
      content = fromJson(BulletinContentSchema, value as JsonValue);
    } else {
      content = fromJson(BulletinContentSchema, value as JsonValue);
      result = contentValidator().validate(BulletinContentSchema, content);
    }
  } catch (error) {
    refuseContent(prefix, [`content: ${error instanceof Error ? error.message : String(error)}`]);
  }
  if (result.kind === 'invalid') refuseContent(prefix, result.violations.map(describeViolation));
  if (result.kind === 'error') {
    // A rule that does not compile is a defect of the schema, not of the input.
    if (result.error instanceof CompilationError) fail('INTERNAL', `the content schema does not compile: ${result.error.message}`, result.error);
    refuseContent(prefix, [`content: could not be validated: ${result.error.message}`]);
  }
  if (!kind.withdrawal) {
    const found = contentCategory(content);
    if (found !== kind.category) {
      refuseContent(prefix, [`content.${kind.category}: the category is ${kind.category}, so the content must hold ${kind.category} details${found === undefined ? '' : `, not ${found}`} [category]`]);
    }
  }
  return content;
}

function refuseContent(prefix: string, problems: readonly string[]): never {
  const listed = problems.slice(0, MAX_LISTED).map((problem) => printable(problem, 240));
  const more = problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more` : '';
  fail('CONTENT_INVALID', `${prefix}: ${listed.join('; ')}${more}`);
}

/** `content.route_alert.waypoints[2].role: must be in list [origin, …] [string.in]` */
function describeViolation(violation: Violation): string {
  const path = pathToString(violation.field);
  return `content${path === '' ? '' : `.${path}`}: ${violation.message} [${violation.ruleId}]`;
}

/** The category whose details the content holds (the case of its `details` oneof). */
export function contentCategory(content: BulletinContent): BulletinCategory | undefined {
  const field = content.details.case === undefined ? undefined : BulletinContentSchema.fields.find((f) => f.localName === content.details.case);
  return BULLETIN_CATEGORIES.find((category) => category === field?.name);
}

/** The content as its claim reads: the proto3 JSON mapping with the proto field names. */
export function contentToJson(content: BulletinContent): { [key: string]: JsonValue } {
  const json = toJson(BulletinContentSchema, content, { useProtoFieldName: true });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('INTERNAL', 'the content did not convert to a JSON object');
  return json;
}

// ---------------------------------------------------------------------------------------------
// The shape: every key a field of the message under its proto name, every value of its JSON type.

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function checkShape(desc: DescMessage, value: unknown, path: string, problems: string[]): void {
  if (!isPlainObject(value)) {
    problems.push(`${path}: must be an object, not ${jsonType(value)}`);
    return;
  }
  const oneofsSet = new Map<string, string>();
  for (const [key, item] of Object.entries(value)) {
    const field = desc.fields.find((f) => f.name === key);
    if (field === undefined) {
      problems.push(`${path}: unknown field "${printable(key, 40)}"`);
      continue;
    }
    const at = `${path}.${key}`;
    if (item === null) {
      problems.push(`${at}: must not be null; leave the field out instead`);
      continue;
    }
    if (field.oneof !== undefined) {
      const other = oneofsSet.get(field.oneof.name);
      if (other !== undefined) problems.push(`${path}: ${other} and ${key} are both set; only one of them may be`);
      else oneofsSet.set(field.oneof.name, key);
    }
    checkField(field, item, at, problems);
  }
}

function checkField(field: DescField, value: unknown, path: string, problems: string[]): void {
  switch (field.fieldKind) {
    case 'scalar':
      checkScalar(field.scalar, value, path, problems);
      return;
    case 'message':
      checkShape(field.message, value, path, problems);
      return;
    case 'list':
      if (!Array.isArray(value)) {
        problems.push(`${path}: must be an array, not ${jsonType(value)}`);
        return;
      }
      value.forEach((element: unknown, index) => {
        const at = `${path}[${index}]`;
        if (field.listKind === 'scalar') checkScalar(field.scalar, element, at, problems);
        else if (field.listKind === 'message') checkShape(field.message, element, at, problems);
        else problems.push(`${at}: enum lists are not part of the content schema`);
      });
      return;
    case 'enum':
    case 'map':
      problems.push(`${path}: ${field.fieldKind} fields are not part of the content schema`);
      return;
  }
}

const INTEGER_RANGES: Readonly<Partial<Record<ScalarType, readonly [number, number]>>> = {
  [ScalarType.INT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SINT32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.SFIXED32]: [-(2 ** 31), 2 ** 31 - 1],
  [ScalarType.UINT32]: [0, 2 ** 32 - 1],
  [ScalarType.FIXED32]: [0, 2 ** 32 - 1],
};

function checkScalar(scalar: ScalarType, value: unknown, path: string, problems: string[]): void {
  switch (scalar) {
    case ScalarType.STRING:
      if (typeof value !== 'string') problems.push(`${path}: must be a string, not ${jsonType(value)}`);
      return;
    case ScalarType.BOOL:
      if (typeof value !== 'boolean') problems.push(`${path}: must be true or false, not ${jsonType(value)}`);
      return;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      // JSON numbers only: the mapping's "NaN" and "Infinity" strings are refused here.
      if (typeof value !== 'number' || !Number.isFinite(value)) problems.push(`${path}: must be a number, not ${jsonType(value)}`);
      return;
    default: {
      const range = INTEGER_RANGES[scalar];
      if (range === undefined) {
        problems.push(`${path}: ${ScalarType[scalar]} fields are not part of the content schema`);
      } else if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
        problems.push(`${path}: must be a whole number from ${range[0]} to ${range[1]}, not ${typeof value === 'number' ? String(value) : jsonType(value)}`);
      }
    }
  }
}
