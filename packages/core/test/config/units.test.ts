import { describe, expect, it } from 'vitest';
import { durationSchema, formatDuration, formatSize, parseDuration, parseSize, sizeSchema } from '../../src/config/index.js';

const KiB = 1024;
const MiB = 1024 ** 2;

describe('sizes (binary multiples for every spelling)', () => {
  it.each([
    ['25MB', 25 * MiB],
    ['512KB', 512 * KiB],
    ['1.5MB', 1.5 * MiB],
    ['64MiB', 64 * MiB],
    ['100B', 100],
    ['10 kb', 10 * KiB],
    ['2gb', 2 * 1024 ** 3],
    ['1K', KiB],
    ['100', 100],
    [' 7 MB ', 7 * MiB],
    ['0', 0],
  ])('parseSize(%j) = %d', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'MB', '25 XB', '-1MB', '1.5B', '1e3', '25M B', 'lots', '1,5MB'])('parseSize(%j) is undefined', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });

  it('sizeSchema accepts byte counts and strings, rejects the rest with an admin-readable message', () => {
    expect(sizeSchema.parse(1000)).toBe(1000);
    expect(sizeSchema.parse('25MB')).toBe(25 * MiB);
    for (const bad of [-1, 1.5, '25 parsecs', true, null]) {
      const result = sizeSchema.safeParse(bad);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toMatch(/^expected a size like "25MB" or a number of bytes, got /);
    }
  });

  it.each([
    [0, '0B'],
    [100, '100B'],
    [KiB, '1KB'],
    [25 * MiB, '25MB'],
    [1.5 * MiB, '1.5MB'],
    [1025 * MiB, '1025MB'],
    [1025, '1025B'],
  ])('formatSize(%d) = %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});

describe('durations (a bare number is seconds)', () => {
  it.each([
    ['60s', 60_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['500ms', 500],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['1.5s', 1500],
    ['90', 90_000],
    ['5 minutes', 300_000],
    ['10SEC', 10_000],
    ['1w', 604_800_000],
  ])('parseDuration(%j) = %d', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 's', 'sixty', '5 parsecs', '1h,30m', '-5s', '5s!', 'h1'])('parseDuration(%j) is undefined', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('durationSchema: numbers are seconds', () => {
    expect(durationSchema.parse(30)).toBe(30_000);
    expect(durationSchema.parse(0.5)).toBe(500);
    expect(durationSchema.parse('5m')).toBe(300_000);
    const result = durationSchema.safeParse('sixty');
    expect(result.error?.issues[0]?.message).toBe('expected a duration like "60s" or "5m", got "sixty"');
    expect(durationSchema.safeParse(-1).success).toBe(false);
  });

  it.each([
    [0, '0s'],
    [500, '500ms'],
    [60_000, '1m'],
    [5_400_000, '1h30m'],
    [90_061_001, '1d1h1m1s1ms'],
  ])('formatDuration(%d) = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});
