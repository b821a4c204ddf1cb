/**
 * Big numbers in maildirsize (found by property testing; kept out of
 * quota.property.test.ts because it fails on the current source). parseMaildirsize sums
 * the deltas with Number(), so a line whose numbers (or whose running sum) pass 2^53 is
 * silently rounded, one of 309 digits or more is Infinity, and Infinity plus -Infinity
 * is NaN. QuotaStore.usage returns that usage as it is (the file is small and its
 * definition matches), and fits() compares with `>`: a NaN usage is never over the
 * limit, so a mailbox whose maildirsize says "9…9 0" / "-9…9 0" takes any amount of mail.
 *
 * Expected: a usage that is not exact in safe integers makes the file unusable
 * (undefined → the store rebuilds it by a scan), like any other malformed line.
 */
import fc from 'fast-check';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fits, MAILDIRSIZE, parseMaildirsize, QuotaStore } from '../src/quota.js';
import { tempDir } from './helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => void (tmp = await tempDir('mg-quota-overflow-')));
afterAll(() => tmp.cleanup());

describe('maildirsize with numbers beyond safe integers', () => {
  it('the usage read is the exact sum of the deltas in safe integers, or the file is refused', () => {
    const number = fc.oneof(fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }), fc.bigInt({ min: -(10n ** 400n), max: 10n ** 400n }));
    fc.assert(
      fc.property(fc.array(fc.tuple(number, fc.bigInt({ min: -1000n, max: 1000n })), { maxLength: 4 }), (deltas) => {
        const parsed = parseMaildirsize(`1000S\n${deltas.map(([b, c]) => `${b} ${c}\n`).join('')}`);
        const safe = (n: bigint) => n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER);
        // every number and every running sum a safe integer: the file must be read, exactly
        const sums = (pick: 0 | 1) => deltas.reduce<bigint[]>((acc, d) => [...acc, (acc.at(-1) ?? 0n) + d[pick]], []);
        const exact = deltas.every(([b, c]) => safe(b) && safe(c)) && sums(0).every(safe) && sums(1).every(safe);
        if (exact) expect(parsed).toBeDefined();
        if (parsed === undefined) return;
        expect(Number.isSafeInteger(parsed.usage.bytes) && BigInt(parsed.usage.bytes) === (sums(0).at(-1) ?? 0n)).toBe(true);
        expect(Number.isSafeInteger(parsed.usage.messages) && BigInt(parsed.usage.messages) === (sums(1).at(-1) ?? 0n)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('regression: 2^53 + 1 is read as 2^53', () => {
    expect(parseMaildirsize('1000S\n9007199254740993 0\n')).toBeUndefined(); // observed: bytes 9007199254740992
  });

  it('regression: a NaN usage lets a full mailbox take any amount of mail', async () => {
    const nines = '9'.repeat(309);
    const box = join(tmp.dir, 'box');
    await mkdir(join(box, 'tmp'), { recursive: true });
    await writeFile(join(box, MAILDIRSIZE), `1000S\n${nines} 0\n-${nines} 0\n`);
    const used = await new QuotaStore({ fileMode: 0o600, uniqueName: () => 'rebuild' }).usage(box, { bytes: 1000 });
    expect(Number.isFinite(used.bytes)).toBe(true); // observed: NaN
    expect(fits(used, { bytes: 1000 }, { bytes: 10 ** 9, messages: 1 })).toBe(false); // observed: true
  });
});
