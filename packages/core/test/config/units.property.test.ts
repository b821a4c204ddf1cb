/**
 * Property tests of sizes and durations against exact arithmetic (BigInt) as the oracle:
 * every spelling an admin may use ("25 mb", "1.5MiB", "1h30m", "2 Days 4h") reads as the
 * exact amount, rounded to a whole byte or millisecond, or is refused when it does not fit
 * in a safe integer; blanks around it and the case of its unit change nothing. The round
 * trips and the no-throw property are in fuzz.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { durationSchema, parseDuration, parseSize, sizeSchema } from '../../src/config/index.js';

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

const SIZE_UNITS: Array<[string[], bigint]> = [
  [['', 'b', 'byte', 'bytes'], 1n],
  [['k', 'kb', 'kib'], 1024n],
  [['m', 'mb', 'mib'], 1024n ** 2n],
  [['g', 'gb', 'gib'], 1024n ** 3n],
  [['t', 'tb', 'tib'], 1024n ** 4n],
];
const DURATION_UNITS: Array<[string[], bigint]> = [
  [['ms', 'msec', 'millisecond', 'milliseconds'], 1n],
  [['s', 'sec', 'secs', 'second', 'seconds'], 1000n],
  [['m', 'min', 'mins', 'minute', 'minutes'], 60_000n],
  [['h', 'hr', 'hrs', 'hour', 'hours'], 3_600_000n],
  [['d', 'day', 'days'], 86_400_000n],
  [['w', 'week', 'weeks'], 604_800_000n],
];

/** A unit spelling in random case, and what it multiplies by. */
const unitOf = (table: Array<[string[], bigint]>, minFactor = 1n) =>
  fc
    .tuple(fc.constantFrom(...table.filter(([, f]) => f >= minFactor)), fc.nat(), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }))
    .map(([[spellings, factor], pick, upper]) => ({
      unit: [...spellings[pick % spellings.length]!].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''),
      factor,
    }));

/** A decimal amount as text and as an exact fraction (numerator / 10^digits). */
const amount = (maxInteger: number, maxDigits: number) =>
  fc.tuple(fc.integer({ min: 0, max: maxInteger }), fc.integer({ min: 0, max: maxDigits }), fc.nat()).map(([int, digits, frac]) => {
    const fraction = digits === 0 ? '' : String(frac % 10 ** digits).padStart(digits, '0');
    return { text: fraction ? `${int}.${fraction}` : String(int), num: BigInt(`${int}${fraction}`), den: 10n ** BigInt(digits) };
  });

/** num/den rounded half up, for non-negative values. */
const round = (num: bigint, den: bigint): bigint => (2n * num + den) / (2n * den);

const blank = fc.constantFrom('', ' ', '  ', '\t');

describe('parseSize', () => {
  it('reads a whole number of any unit as the exact product, or undefined beyond a safe integer', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 56n }), unitOf(SIZE_UNITS), blank, (n, { unit, factor }, space) => {
        const exact = n * factor;
        expect(parseSize(`${n}${space}${unit}`)).toBe(exact <= MAX ? Number(exact) : undefined);
      }),
      { numRuns: 1000 },
    );
  });

  it('reads a fraction of K, M, G or T as the nearest byte (exactly up to 1 TiB, beyond that within a byte); a fraction of a byte is refused', () => {
    fc.assert(
      fc.property(amount(2 ** 30, 4), unitOf(SIZE_UNITS), ({ text, num, den }, { unit, factor }) => {
        const size = parseSize(`${text}${unit}`);
        const exact = factor === 1n ? (num % den === 0n ? num / den : undefined) : round(num * factor, den); // "1.0B" is no fraction
        if (exact === undefined || exact > MAX) expect(size).toBeUndefined();
        // The decimal amount is read as a double: its error, times the unit, stays under the
        // smallest distance of the exact value to a half byte (1/625) only up to 2^40 bytes.
        else if (exact <= 2n ** 40n) expect(size).toBe(Number(exact));
        else expect(Math.abs(size! - Number(exact))).toBeLessThanOrEqual(1);
      }),
      { numRuns: 1000 },
    );
  });

  it('blanks around the size do not matter; sizeSchema agrees with parseSize on every string', () => {
    fc.assert(
      fc.property(fc.oneof(amount(99_999, 2).map((a) => a.text), fc.string({ maxLength: 8 })), unitOf(SIZE_UNITS), blank, blank, (a, { unit }, before, after) => {
        const text = `${a}${unit}`;
        const value = parseSize(text);
        expect(parseSize(`${before}${text}${after}`)).toBe(value);
        const parsed = sizeSchema.safeParse(text);
        expect(parsed.success ? parsed.data : undefined).toBe(value);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseDuration', () => {
  const part = fc.oneof(
    fc.tuple(amount(10_000, 0), unitOf(DURATION_UNITS)),
    // decimals only where they name whole milliseconds (at most 3 digits, a second or longer)
    fc.tuple(amount(10_000, 3), unitOf(DURATION_UNITS, 1000n)),
  );

  it('a sequence of parts ("1h30m", "2 days 4H 10s") is the exact sum of its parts', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(part, blank, blank), { minLength: 1, maxLength: 5 }), (parts) => {
        const text = parts.map(([[a, u], s1, s2]) => `${a.text}${s1}${u.unit}${s2}`).join('');
        const exact = parts.reduce((sum, [[a, u]]) => sum + (a.num * u.factor) / a.den, 0n);
        expect(parseDuration(text)).toBe(Number(exact));
        expect(parseDuration(` ${text.toUpperCase()} `)).toBe(Number(exact));
      }),
      { numRuns: 1000 },
    );
  });

  it('a bare number is seconds; durationSchema takes it as a number or a string alike', () => {
    fc.assert(
      fc.property(amount(10 ** 9, 3), ({ text, num, den }) => {
        const ms = Number((num * 1000n) / den);
        expect(parseDuration(text)).toBe(ms);
        expect(durationSchema.parse(text)).toBe(ms);
        expect(durationSchema.parse(Number(text))).toBe(ms);
      }),
      { numRuns: 500 },
    );
  });

  it('a part with an unknown unit, a sign, or junk anywhere makes the whole duration undefined', () => {
    // none of these can join a neighbour into something valid ("sec." could: "0msec.0ms" is 0 msec + .0 ms)
    const junk = fc.constantFrom('x', 'mss', 'hour s', '-', '+', ',', '1e3s', 'µs', 'sec.s', '..');
    fc.assert(
      fc.property(fc.array(part, { maxLength: 3 }), junk, fc.nat(), (parts, bad, at) => {
        const pieces = parts.map(([a, u]) => `${a.text}${u.unit}`);
        pieces.splice(at % (pieces.length + 1), 0, bad);
        expect(parseDuration(pieces.join(''))).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});
