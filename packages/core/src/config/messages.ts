/**
 * Wording of configuration errors. Zod's default messages ("Invalid input: expected
 * number, received string") are written for developers; these are written for mail
 * admins: "expected X, got Y", with the offending value shown as they typed it.
 */
import type { z } from 'zod';

type RawIssue = z.core.$ZodRawIssue;

/** A value as an admin would recognise it in their YAML: strings quoted, containers named. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (value instanceof Date) return 'a date';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("tsl" → "tls" is 1). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The closest candidate within a small edit distance (case-insensitive), if any. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  // Short names get a tighter bound so that e.g. "log" is not "corrected" to "tls".
  const limit = Math.min(2, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

export function didYouMean(name: string, candidates: readonly string[]): string {
  const match = closest(name, candidates);
  return match === undefined ? '' : ` (did you mean ${JSON.stringify(match)}?)`;
}

function joinOr(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  tuple: 'a list',
  object: 'a mapping (key: value pairs)',
  record: 'a mapping (key: value pairs)',
  map: 'a mapping (key: value pairs)',
  null: 'an empty value',
  date: 'a date',
  bigint: 'an integer',
};

function typeName(expected: string): string {
  return TYPE_NAMES[expected] ?? `a ${expected}`;
}

/**
 * Builds a message for a zod issue. `known` records, for each unrecognized_keys issue
 * (keyed by its `keys` array, which survives finalization by reference), the keys the
 * object does accept, so the caller can suggest "did you mean".
 */
export function createErrorMap(known: WeakMap<object, string[]>): z.core.$ZodErrorMap {
  return (issue: RawIssue) => {
    const got = describeValue(issue.input);
    switch (issue.code) {
      case 'invalid_type':
        if (issue.input === undefined) return 'required';
        return `expected ${typeName(issue.expected)}, got ${got}`;
      case 'too_small':
        return tooSmall(issue, got);
      case 'too_big':
        return tooBig(issue, got);
      case 'invalid_value': {
        const values = issue.values.map((v) => JSON.stringify(v) ?? String(v));
        const strings = issue.values.filter((v): v is string => typeof v === 'string');
        const hint = typeof issue.input === 'string' ? didYouMean(issue.input, strings) : '';
        const what = values.length === 1 ? values.join('') : `one of ${joinOr(values)}`;
        return `expected ${what}, got ${got}${hint}`;
      }
      case 'invalid_format':
        return `expected ${formatName(issue)}, got ${got}`;
      case 'not_multiple_of':
        return `expected a multiple of ${issue.divisor}, got ${got}`;
      case 'unrecognized_keys': {
        const shape = objectShape(issue.inst);
        if (shape) known.set(issue.keys, Object.keys(shape));
        return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
      }
      case 'invalid_union':
        return unionMessage(issue, got);
      case 'invalid_key':
        return `invalid key, got ${got}`;
      case 'invalid_element':
        return `invalid element, got ${got}`;
      default:
        return `invalid value, got ${got}`;
    }
  };
}

function tooSmall(issue: Extract<RawIssue, { code: 'too_small' }>, got: string): string {
  const min = String(issue.minimum);
  switch (issue.origin) {
    case 'string':
      if (issue.minimum === 1) return 'must not be empty';
      return `expected at least ${min} characters, got ${got}`;
    case 'array':
    case 'set':
      if (issue.minimum === 1) return 'must not be empty';
      return `expected at least ${min} items, got ${countOf(issue.input)}`;
    default:
      return `expected ${issue.inclusive === false ? 'more than' : 'at least'} ${min}, got ${got}`;
  }
}

function tooBig(issue: Extract<RawIssue, { code: 'too_big' }>, got: string): string {
  const max = String(issue.maximum);
  switch (issue.origin) {
    case 'string':
      return `expected at most ${max} characters, got ${countOf(issue.input)}`;
    case 'array':
    case 'set':
      return `expected at most ${max} items, got ${countOf(issue.input)}`;
    default:
      return `expected ${issue.inclusive === false ? 'less than' : 'at most'} ${max}, got ${got}`;
  }
}

function countOf(value: unknown): string {
  if (typeof value === 'string' || Array.isArray(value)) return String(value.length);
  if (value instanceof Set) return String(value.size);
  return describeValue(value);
}

function formatName(issue: Extract<RawIssue, { code: 'invalid_format' }>): string {
  const extra = issue as { prefix?: string; suffix?: string; includes?: string };
  switch (issue.format) {
    case 'regex':
      return `a string matching ${issue.pattern ?? 'the required pattern'}`;
    case 'starts_with':
      return `a string starting with ${JSON.stringify(extra.prefix)}`;
    case 'ends_with':
      return `a string ending with ${JSON.stringify(extra.suffix)}`;
    case 'includes':
      return `a string containing ${JSON.stringify(extra.includes)}`;
    case 'email':
      return 'an email address';
    case 'url':
      return 'a URL';
    case 'ipv4':
      return 'an IPv4 address';
    case 'ipv6':
      return 'an IPv6 address';
    case 'cidrv4':
    case 'cidrv6':
      return 'a CIDR range like "192.0.2.0/24"';
    default:
      return `a valid ${issue.format}`;
  }
}

function unionMessage(issue: Extract<RawIssue, { code: 'invalid_union' }>, got: string): string {
  const options: unknown = issue.options;
  if (typeof issue.discriminator === 'string' && Array.isArray(options)) {
    const values = options.map((v: unknown) => JSON.stringify(v) ?? String(v));
    // The issue's input is the whole mapping; show the discriminator's own value.
    const input: unknown = issue.input;
    const value = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[issue.discriminator] : undefined;
    return `expected one of ${joinOr(values)}, got ${describeValue(value)}`;
  }
  // When every alternative failed on its type alone, list the accepted types.
  const expected: string[] = [];
  for (const branch of issue.errors) {
    const [first] = branch;
    if (branch.length !== 1 || !first || first.code !== 'invalid_type' || first.path.length !== 0) {
      return `does not match any accepted form, got ${got}`;
    }
    const name = typeName(first.expected);
    if (!expected.includes(name)) expected.push(name);
  }
  if (expected.length === 0) return `does not match any accepted form, got ${got}`;
  return `expected ${joinOr(expected)}, got ${got}`;
}

function objectShape(inst: unknown): Record<string, unknown> | undefined {
  const def = (inst as { _zod?: { def?: { shape?: unknown } } } | undefined)?._zod?.def;
  const shape = def?.shape;
  return shape && typeof shape === 'object' ? (shape as Record<string, unknown>) : undefined;
}

/** An error map for one schema field: "required" when absent, else "expected <what>, got <value>". */
export function expecting(what: string): (issue: RawIssue) => string {
  return (issue) => (issue.input === undefined ? 'required' : `expected ${what}, got ${describeValue(issue.input)}`);
}
