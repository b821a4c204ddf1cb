/**
 * The glob matcher behind address, host and user patterns: same answers as a plain
 * reference matcher, and bounded work on the inputs that make a backtracking RegExp explode.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileAddressPattern, compileHostPattern, compileGlob, matchGlob, MAX_REGEX_SUBJECT, toMatchAddress, type AddressPredicate, type GlobStats, type NamePredicate } from '../src/patterns.js';

/** Reference: dynamic programming over code points, obviously right and obviously polynomial. */
function reference(glob: string, subject: string): boolean {
  const g = Array.from(glob);
  const s = Array.from(subject);
  // ok[j] = glob[0..i) matches subject[0..j)
  let ok = s.map(() => false).concat(false);
  ok[0] = true;
  for (const t of g) {
    const next = ok.map(() => false);
    for (let j = 0; j <= s.length; j++) {
      if (t === '*') next[j] = ok[j]! || (j > 0 && next[j - 1]!);
      else next[j] = j > 0 && ok[j - 1]! && (t === '?' || t === s[j - 1]);
    }
    ok = next;
  }
  return ok[s.length]!;
}

const globChars = fc.constantFrom('a', 'b', '-', '.', '*', '?', '\u00e9', '\u{1F600}');
const subjectChars = fc.constantFrom('a', 'b', '-', '.', '*', '?', '\u00e9', '\u{1F600}', '\uD800');
const globs = fc.array(globChars, { maxLength: 12 }).map((a) => a.join(''));
const subjects = fc.array(subjectChars, { maxLength: 24 }).map((a) => a.join(''));

describe('matchGlob', () => {
  it('agrees with the reference matcher on random globs and subjects', () => {
    fc.assert(
      fc.property(globs, subjects, (glob, subject) => {
        expect(matchGlob(glob, subject)).toBe(reference(glob, subject));
        expect(compileGlob(glob)(subject)).toBe(reference(glob, subject));
      }),
      { numRuns: 5_000 },
    );
  });

  it('agrees with the reference on subjects built to match (so that true answers are frequent)', () => {
    // Replace parts of a subject by wildcards: the glob matches it, and near-misses of it.
    const cases = fc.tuple(subjects, fc.array(fc.tuple(fc.nat(), fc.constantFrom('*', '?', '**')), { maxLength: 4 }), subjects);
    fc.assert(
      fc.property(cases, ([subject, holes, other]) => {
        const chars = Array.from(subject);
        for (const [at, wildcard] of holes) if (chars.length > 0) chars[at % chars.length] = wildcard;
        const glob = chars.join('');
        for (const s of [subject, other, subject + other, other + subject]) expect(matchGlob(glob, s)).toBe(reference(glob, s));
      }),
      { numRuns: 3_000 },
    );
  });

  it('examples: whole-subject, case-sensitive, code points', () => {
    expect(matchGlob('*', '')).toBe(true);
    expect(matchGlob('', '')).toBe(true);
    expect(matchGlob('', 'a')).toBe(false);
    expect(matchGlob('?', '')).toBe(false);
    expect(matchGlob('a*', 'abc')).toBe(true);
    expect(matchGlob('*c', 'abc')).toBe(true);
    expect(matchGlob('*b', 'abc')).toBe(false);
    expect(matchGlob('a?c', 'abc')).toBe(true);
    expect(matchGlob('a?c', 'ac')).toBe(false);
    expect(matchGlob('A*', 'abc')).toBe(false);
    expect(matchGlob('?', '\u{1F600}')).toBe(true); // one character, two UTF-16 code units
    expect(matchGlob('??', '\u{1F600}')).toBe(false);
    expect(matchGlob('*-*-*-*.dyn.example', '1-2-3-4.dyn.example')).toBe(true);
    expect(matchGlob('*-*-*-*.dyn.example', '1-2-3.dyn.example')).toBe(false);
    expect(matchGlob('*.example', 'a\nb.example')).toBe(true); // `*` spans any character, newlines included
  });

  it('does bounded work on pathological input: 10 000 characters against *a*a*a*a*a*b', () => {
    const glob = '*a*a*a*a*a*b';
    for (const subject of ['a'.repeat(10_000), `${'a'.repeat(10_000)}c`, `${'a'.repeat(9_999)}b`, 'ab'.repeat(5_000).slice(0, 9_999)]) {
      const stats: GlobStats = { steps: 0 };
      const result = matchGlob(glob, subject, stats);
      expect(result).toBe(subject.endsWith('b') && (subject.match(/a/g)?.length ?? 0) >= 5);
      // O(subject × glob) at worst; in fact about linear here (backtracking to the last star only).
      expect(stats.steps).toBeLessThanOrEqual((subject.length + 1) * (glob.length + 1));
      expect(stats.steps).toBeLessThanOrEqual(3 * subject.length + glob.length);
    }
  });

  it('does bounded work on the hostile HELO of the dynamic-hosts rule', () => {
    const glob = '*-*-*-*.dyn.example';
    for (const n of [300, 5_000]) {
      const stats: GlobStats = { steps: 0 };
      expect(matchGlob(glob, '-'.repeat(n), stats)).toBe(false);
      expect(stats.steps).toBeLessThanOrEqual((n + 1) * (glob.length + 1));
    }
  });
});

describe('patterns use the linear matcher, and bound what a /regex/ sees', () => {
  it('host, address and user globs on long hostile subjects', () => {
    const host = compileHostPattern('*-*-*-*-*-*.dyn.example') as NamePredicate;
    expect(host('-'.repeat(20_000))).toBe(false);
    expect(host(`${'-'.repeat(20_000)}.dyn.example`)).toBe(true);
    const addr = compileAddressPattern('*-*-*-*@*.*.*.example') as AddressPredicate;
    expect(addr(toMatchAddress({ local: '-'.repeat(64), domain: `${'.'.repeat(200)}example` }))).toBe(true);
    expect(addr(toMatchAddress({ local: '-'.repeat(64), domain: `${'.'.repeat(200)}example.test` }))).toBe(false);
    expect(addr(toMatchAddress({ local: '-'.repeat(64), domain: `${'x'.repeat(200)}.example` }))).toBe(false);
    expect(addr(toMatchAddress({ local: 'a-b-c-d', domain: 'x.y.z.example' }))).toBe(true);
  });

  it(`a subject over ${MAX_REGEX_SUBJECT} characters never matches a /regex/ (so never an accept rule by accident)`, () => {
    const host = compileHostPattern('/^[a-z-]+$/') as NamePredicate;
    expect(host('a'.repeat(MAX_REGEX_SUBJECT))).toBe(true);
    expect(host('a'.repeat(MAX_REGEX_SUBJECT + 1))).toBe(false);
  });
});
