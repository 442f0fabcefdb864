/**
 * The regular-expression matcher of the content validator (`content.ts`): the CEL `matches()`
 * of `rules.proto` and the `string.pattern` rules of the schema.
 *
 * protovalidate's default matcher is RE2JS, an RE2 engine in JavaScript: linear time whatever
 * the pattern, which matters for patterns that come from input, but slow: protovalidate's
 * `validate` of a 2 KB route alert took 180-250 µs here with it and 47 µs with `RegExp` (the
 * summary's `text` rule most of it), and the hub validates every bulletin on its event loop,
 * before the ledger lock. The patterns of Corridor's schema are constants, as protovalidate's own fixed
 * formats are (which it matches with the platform's RegExp for the same reason), so these are
 * matched with V8's RegExp (`u` flag): each is anchored, without nested ambiguous repetition, so
 * backtracking stays linear in the input. Any other pattern still goes to RE2.
 *
 * `tests/core/schema-regex.test.ts` keeps this list equal to the patterns in `proto/` and checks
 * every one against RE2JS over random and adversarial strings (control characters, every
 * Unicode space, lone surrogates, astral characters, near-valid dates).
 */
import { RE2JS } from '@bufbuild/re2';

/** The schema's patterns, exactly as protovalidate passes them (proto string escapes undone). */
export const SCHEMA_PATTERNS: readonly string[] = [
  // rules.proto: line, text, country, date, date-time
  '^[^\\p{Cc}\\p{Z}](?:[^\\p{Cc}]*[^\\p{Cc}\\p{Z}])?$',
  '^[^\\p{Cc}\\p{Z}](?:[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\p{Cc}\\p{Z}])?$',
  '^[A-Z]{3}$',
  '^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)$',
  '^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$',
  // bulletin.proto: language tags, documents, phones, conveyances
  '^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$',
  '^[A-Z0-9][A-Z0-9 <-]{0,30}[A-Z0-9<]$',
  '^\\+?[0-9 ()-]{4,32}$',
  '^[0-9]{7}$',
  '^[0-9]{9}$',
  '^[A-Z0-9]{3,8}$',
  '^[A-Z0-9][A-Z0-9 .-]{0,18}[A-Z0-9]$',
  '^[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?$',
];

const NATIVE = new Map(SCHEMA_PATTERNS.map((pattern) => [pattern, new RegExp(pattern, 'u')]));

/** Patterns outside the schema, compiled by RE2 once; cleared past a bound, as protovalidate's own cache is. */
const RE2_CACHE_LIMIT = 1024;
const re2Cache = new Map<string, RE2JS>();

/** protovalidate's `RegexMatcher`: whether `against` contains a match of `pattern`. */
export function schemaRegexMatch(pattern: string, against: string): boolean {
  const native = NATIVE.get(pattern);
  if (native !== undefined) return native.test(against);
  return re2Match(pattern, against);
}

/** RE2 semantics, as protovalidate's default matcher. */
export function re2Match(pattern: string, against: string): boolean {
  let compiled = re2Cache.get(pattern);
  if (compiled === undefined) {
    if (re2Cache.size >= RE2_CACHE_LIMIT) re2Cache.clear();
    compiled = RE2JS.compile(pattern);
    re2Cache.set(pattern, compiled);
  }
  return compiled.test(against);
}
