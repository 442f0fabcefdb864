import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRegistry, fromJson } from '@bufbuild/protobuf';
import type { JsonValue } from '@bufbuild/protobuf';
import { createValidator } from '@bufbuild/protovalidate';
import { BulletinContentSchema } from '../../src/gen/corridor/v1/bulletin_pb.js';
import { file_corridor_v1_rules } from '../../src/gen/corridor/v1/rules_pb.js';
import { SCHEMA_PATTERNS, re2Match, schemaRegexMatch } from '../../src/core/schema-regex.js';

const PROTO_DIR = new URL('../../proto/corridor/v1/', import.meta.url);
const EXAMPLES_DIR = new URL('../../examples/', import.meta.url);

/** Every regular expression the .proto files give protovalidate, with the proto string escapes undone. */
function patternsInProtos(): string[] {
  const found = new Set<string>();
  for (const file of readdirSync(PROTO_DIR).filter((name) => name.endsWith('.proto'))) {
    const text = readFileSync(new URL(file, PROTO_DIR), 'utf8');
    for (const match of text.matchAll(/pattern\s*[:=]\s*"((?:[^"\\]|\\.)*)"|matches\(r'([^']*)'\)/g)) {
      found.add((match[1] ?? match[2] ?? '').replace(/\\\\/g, '\\'));
    }
  }
  return [...found].sort();
}

// What the patterns are about, and what tends to break them: controls (C0, DEL, C1, NEL), every
// kind of Unicode space (U+180E was one until Unicode 6.3), format characters that are not
// spaces, lone surrogates, astral characters, combining marks.
const ALPHABET = [
  ...'AZaz0129-.:<+()TZ /é',
  '\x00', '\x08', '\t', '\n', '\x0B', '\r', '\x1F', '\x7F', '\x85', '\x9F',
  '\u00A0', '\u1680', '\u180E', '\u2000', '\u2007', '\u200A', '\u200B', '\u2028', '\u2029', '\u202F', '\u205F', '\u3000', '\uFEFF',
  '\uD800', '\uDBFF', '\uDC00', '\uDFFF', '😀', '𝒜', '\u0301',
];

const VALID_EXAMPLES = [
  'IDN', 'en', 'pt-BR', 'zh-Hant-TW', '2026-02-28', '2024-02-29', '2000-02-29', '1900-02-28', '2026-11-30T23:59Z', '2026-11-30T08:15:30+07:00',
  'P<IDNDOE<<JOHN', '+62 (21) 555-0100', '1234567', '123456789', 'PK3X', 'YB-ABC', 'GA4172', 'QZ7510A', 'Route alert: departures at night.',
  'A', 'Ω', 'summary with\ttab and\nnewline inside.',
];

const fromAlphabet = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 40 }).map((chars) => chars.join(''));
const pad = (n: number, width: number): string => String(n).padStart(width, '0');
const dateLike = fc
  .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.option(fc.tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.constantFrom('Z', '+07:00', '-23:59', '+24:00', ''))))
  .map(([y, m, d, time]) => `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}${time === null ? '' : `T${pad(time[0], 2)}:${pad(time[1], 2)}${time[2]}`}`);
/** A valid example with one character inserted, replaced or removed. */
const nearValid = fc
  .tuple(fc.constantFrom(...VALID_EXAMPLES), fc.nat(), fc.constantFrom(...ALPHABET), fc.constantFrom('insert', 'replace', 'remove', 'keep'))
  .map(([example, at, char, edit]) => {
    const i = at % (example.length + 1);
    if (edit === 'insert') return example.slice(0, i) + char + example.slice(i);
    if (edit === 'replace') return example.slice(0, i) + char + example.slice(i + 1);
    if (edit === 'remove') return example.slice(0, i) + example.slice(i + 1);
    return example;
  });
/** One character repeated up to past every counted repetition's bound, between ends the patterns ask for. */
const repeated = fc
  .tuple(fc.constantFrom('', 'A', '+', '1', 'en-'), fc.constantFrom(...'A0<- .9Zx('), fc.integer({ min: 0, max: 45 }), fc.constantFrom('', 'A', '<', '9', ' '))
  .map(([head, char, count, tail]) => `${head}${char.repeat(count)}${tail}`);
/** 29 February of every year (the leap-year alternatives), and the ends of months of a sample of years. */
function* dates(): Generator<string> {
  for (let year = 0; year <= 9999; year++) yield `${pad(year, 4)}-02-29`;
  for (const year of [1900, 1999, 2000, 2023, 2024, 2100]) {
    for (let month = 0; month <= 13; month++) for (const day of [0, 1, 28, 29, 30, 31, 32]) yield `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T12:00Z`;
  }
}

/** Every count of every such character, up to past every counted repetition's bound, between every such end. */
function* repetitions(): Generator<string> {
  for (const head of ['', 'A', '+', '1', 'en-']) {
    for (const char of 'A0<- .9Z') {
      for (let count = 0; count <= 45; count++) for (const tail of ['', 'A', '<', '9']) yield `${head}${char.repeat(count)}${tail}`;
    }
  }
}

const subject = fc.oneof(fromAlphabet, fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }), dateLike, nearValid, repeated);

describe('schemaRegexMatch', () => {
  it('knows exactly the patterns of the .proto files', () => {
    expect([...SCHEMA_PATTERNS].sort()).toEqual(patternsInProtos());
  });

  it.each(SCHEMA_PATTERNS.map((pattern) => [pattern]))('agrees with RE2 on %s', (pattern) => {
    // A valid value with a line break after or before it: where engines' `$` and `^` differ.
    const broken = VALID_EXAMPLES.flatMap((example) => [`${example}\n`, `\n${example}`, `${example}\r\n`]);
    for (const example of [...VALID_EXAMPLES, ...broken, '', ' ', ...ALPHABET, ...repetitions(), ...dates()]) {
      if (schemaRegexMatch(pattern, example) !== re2Match(pattern, example)) expect.fail(`RE2 and RegExp disagree on ${JSON.stringify(example)}`);
    }
    fc.assert(
      fc.property(subject, (against) => {
        expect(schemaRegexMatch(pattern, against)).toBe(re2Match(pattern, against));
      }),
      { numRuns: 400 },
    );
  });

  it('matches each pattern at least once over the examples (the agreement above is not all "no")', () => {
    for (const pattern of SCHEMA_PATTERNS) expect(VALID_EXAMPLES.some((example) => schemaRegexMatch(pattern, example))).toBe(true);
  });

  it('agrees with RE2 on values as long as a summary may be (20,000 characters), and stays fast', () => {
    const body = 'Departures observed at night from the coast. '.repeat(445).slice(0, 19_998);
    const subjects = [`${body}x.`, `${body}x `, `${body}x\u0001`, `${body}\u0001x`, ` ${body}x`, `${body}\u00a0\u2028`, 'a'.repeat(20_000), `${'a '.repeat(9_999)}\u0085`];
    for (const pattern of SCHEMA_PATTERNS) {
      for (const against of subjects) {
        const started = performance.now();
        const native = schemaRegexMatch(pattern, against);
        const elapsed = performance.now() - started;
        expect(native).toBe(re2Match(pattern, against));
        // Linear: a 20,000-character subject takes well under a millisecond here; a backtracking
        // blow-up would take seconds.
        expect(elapsed).toBeLessThan(250);
      }
    }
  });

  it('is what the validator asks for: every pattern of the example bulletins is on the native list', () => {
    const asked = new Set<string>();
    const validator = createValidator({
      registry: createRegistry(file_corridor_v1_rules),
      regexMatch: (pattern, against) => {
        asked.add(pattern);
        return schemaRegexMatch(pattern, against);
      },
    });
    const examples = readdirSync(EXAMPLES_DIR).filter((name) => name.endsWith('.json'));
    expect(examples.length).toBeGreaterThan(5);
    for (const file of examples) {
      const draft = JSON.parse(readFileSync(new URL(file, EXAMPLES_DIR), 'utf8')) as { content: JsonValue };
      expect(validator.validate(BulletinContentSchema, fromJson(BulletinContentSchema, draft.content)).kind).toBe('valid');
    }
    expect(asked.size).toBeGreaterThan(5);
    for (const pattern of asked) expect(SCHEMA_PATTERNS).toContain(pattern);
  });

  it('a pattern outside the schema is matched by RE2, with RE2 syntax', () => {
    expect(schemaRegexMatch('^a+$', 'aaa')).toBe(true);
    expect(schemaRegexMatch('^a+$', 'aab')).toBe(false);
    // RE2 syntax that JavaScript's RegExp does not have.
    expect(schemaRegexMatch('^\\Qa.b\\E$', 'a.b')).toBe(true);
    expect(schemaRegexMatch('^\\Qa.b\\E$', 'axb')).toBe(false);
    // Backreferences are not RE2.
    expect(() => schemaRegexMatch('^(a)\\1$', 'aa')).toThrow();
  });
});
