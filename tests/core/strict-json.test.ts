import { describe, expect, it } from 'vitest';
import { CorridorError } from '../../src/core/errors.js';
import { parseStrictJson } from '../../src/core/strict-json.js';

function refusal(text: string): CorridorError {
  let error: unknown;
  try {
    parseStrictJson(text, 'the test document');
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code: 'JWS_MALFORMED' });
  return error as CorridorError;
}

describe('parseStrictJson', () => {
  describe('refuses duplicate member names', () => {
    it.each([
      ['at top level', '{"a":1,"a":2}', 'a'],
      ['at top level with the same value', '{"a":1,"a":1}', 'a'],
      ['at top level, not adjacent', '{"a":1,"b":2,"c":3,"a":4}', 'a'],
      ['at top level with whitespace', '{ "a" : 1 ,\n\t"a" : 2 }', 'a'],
      ['after a nested object value', '{"a":{"b":1},"a":2}', 'a'],
      ['after a nested array value', '{"a":[1,{"x":2}],"a":2}', 'a'],
      ['after an empty array value', '{"a":[],"a":1}', 'a'],
      ['nested', '{"x":{"a":1,"a":2}}', 'a'],
      ['deeply nested', '{"x":{"y":{"z":[{"w":{"a":true,"a":false}}]}}}', 'a'],
      ['in an array of objects', '[{"a":1},{"b":1,"b":2}]', 'b'],
      ['in an array of objects inside an object', '{"list":[{"k":1},{"k":1,"k":1}]}', 'k'],
      ['the empty name', '{"":1,"":2}', ''],
      ['"a" and "\\u0061"', '{"a":1,"\\u0061":2}', 'a'],
      ['"\\u0061" and "a"', '{"\\u0061":1,"a":2}', 'a'],
      ['"é" and "\\u00e9"', '{"é":1,"\\u00e9":2}', 'é'],
      ['"a\\"b" and "a\\u0022b"', '{"a\\"b":1,"a\\u0022b":2}', 'a"b'],
      ['"/" and "\\/"', '{"/":1,"\\/":2}', '/'],
      ['a surrogate pair and its escape', '{"😀":1,"\\ud83d\\ude00":2}', '😀'],
      ['after a value ending in an escaped backslash', '{"s":"x\\\\","s":1}', 's'],
      ['after a value holding an escaped quote', '{"s":"\\"","s":1}', 's'],
    ])('%s', (_name, text, name) => {
      // Plain JSON.parse accepts every one of these: the last value silently wins.
      expect(() => JSON.parse(text) as unknown).not.toThrow();
      const error = refusal(text);
      expect(error.message).toContain('the test document');
      expect(error.message).toContain(`"${name}" twice`);
    });
  });

  describe('is not confused by strings', () => {
    it.each([
      ['braces, colons and commas in values', '{"a":"}{,:","b":"{\\"a\\":1}"}', { a: '}{,:', b: '{"a":1}' }],
      ['a value that looks like a repeated name', '{"a":"a","b":"a","c":"\\"a\\":1,\\"a\\""}', { a: 'a', b: 'a', c: '"a":1,"a"' }],
      ['brackets in names', '{"{":1,"}":2,"[":3,"]":4,":":5,",":6}', { '{': 1, '}': 2, '[': 3, ']': 4, ':': 5, ',': 6 }],
      ['escaped quotes and backslashes in names', '{"a\\"":1,"a\\\\":2,"a":3}', { 'a"': 1, 'a\\': 2, a: 3 }],
      ['a value ending in a backslash before the next name', '{"s":"x\\\\","t":"y"}', { s: 'x\\', t: 'y' }],
      ['strings in arrays are values, not names', '{"a":["b","b"],"b":["a"]}', { a: ['b', 'b'], b: ['a'] }],
      ['an array of strings followed by a member named like one of them', '{"a":[1,"b"],"b":2}', { a: [1, 'b'], b: 2 }],
    ])('%s', (_name, text, expected) => {
      expect(parseStrictJson(text, 'x')).toEqual(expected);
    });
  });

  describe('allows the same name in different objects', () => {
    it.each([
      ['sibling objects', '{"x":{"a":1},"y":{"a":2}}', { x: { a: 1 }, y: { a: 2 } }],
      ['objects in an array', '[{"a":1},{"a":2}]', [{ a: 1 }, { a: 2 }]],
      ['parent and child', '{"a":{"a":{"a":1}}}', { a: { a: { a: 1 } } }],
      ['a name after a nested object that used it', '{"x":{"a":1},"a":2}', { x: { a: 1 }, a: 2 }],
      ['case differs', '{"a":1,"A":2}', { a: 1, A: 2 }],
    ])('%s', (_name, text, expected) => {
      expect(parseStrictJson(text, 'x')).toEqual(expected);
    });
  });

  it('returns what JSON.parse returns for scalars and arrays', () => {
    expect(parseStrictJson('"x"', 'x')).toBe('x');
    expect(parseStrictJson('1', 'x')).toBe(1);
    expect(parseStrictJson('null', 'x')).toBeNull();
    expect(parseStrictJson('[1,[2,{}]]', 'x')).toEqual([1, [2, {}]]);
  });

  it.each([['{"a":1,}'], ['{a:1}'], [''], ['{"a":1'], ["{'a':1}"], ['\uFEFF{}'], ['{"a":1}x']])(
    'refuses invalid JSON %j',
    (text) => {
      expect(refusal(text).message).toMatch(/not valid JSON/);
    },
  );

  it('keeps control characters from a duplicate name out of the error message', () => {
    const error = refusal('{"a\\u0000\\n\\u001b[31m":1,"a\\u0000\\n\\u001b[31m":2}');
    expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('shortens a long duplicate name in the error message', () => {
    const name = 'n'.repeat(500);
    const error = refusal(`{"${name}":1,"${name}":2}`);
    expect(error.message.length).toBeLessThan(200);
  });
});
