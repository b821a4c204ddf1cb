/**
 * Sizes and durations as mail admins write them ("25MB", "5m", "1h30m").
 *
 * Sizes use binary multiples for every spelling (K, KB, KiB = 1024): Haraka and most
 * admins mean 25*1024*1024 by "25MB", and one rule for all spellings avoids surprises.
 * Durations: a bare number means seconds, as in Postfix's main.cf.
 */
import { z } from 'zod';
import { describeValue, expecting } from './messages.js';

const KIB = 1024;
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  byte: 1,
  bytes: 1,
  k: KIB,
  kb: KIB,
  kib: KIB,
  m: KIB ** 2,
  mb: KIB ** 2,
  mib: KIB ** 2,
  g: KIB ** 3,
  gb: KIB ** 3,
  gib: KIB ** 3,
  t: KIB ** 4,
  tb: KIB ** 4,
  tib: KIB ** 4,
};

const SIZE_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i;

/** Bytes for "25MB", "1.5 MiB", "512kb", "100" (bytes); undefined if not a size. */
export function parseSize(text: string): number | undefined {
  const match = SIZE_RE.exec(text.trim());
  if (!match) return undefined;
  const multiplier = SIZE_UNITS[(match[2] ?? '').toLowerCase()];
  if (multiplier === undefined) return undefined;
  const amount = Number(match[1]);
  // "1.5B" names a fraction of a byte: refuse rather than guess.
  if (multiplier === 1 && !Number.isInteger(amount)) return undefined;
  const bytes = Math.round(amount * multiplier);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** "25MB", "1.5KB", "1025B": the largest unit that states the size exactly (parseSize reads it back). */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [
    ['TB', KIB ** 4],
    ['GB', KIB ** 3],
    ['MB', KIB ** 2],
    ['KB', KIB],
  ];
  for (const [name, size] of units) {
    const amount = Number((bytes / size).toFixed(2));
    if (bytes >= size && Math.round(amount * size) === bytes) return `${amount}${name}`;
  }
  return `${bytes}B`;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  msec: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

const NUMBER_RE = /^(\d+(?:\.\d+)?|\.\d+)$/;
const PART_RE = /(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)\s*/giy;

/** Milliseconds for "60s", "5m", "1h30m", "500ms", "2d" or a bare number of seconds ("90"). */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (NUMBER_RE.test(trimmed)) return secondsToMs(Number(trimmed));
  let total = 0;
  let consumed = 0;
  PART_RE.lastIndex = 0;
  for (let m = PART_RE.exec(trimmed); m; m = PART_RE.exec(trimmed)) {
    const unit = DURATION_UNITS[(m[2] ?? '').toLowerCase()];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    consumed = PART_RE.lastIndex;
  }
  // The sticky regex stops at the first character it cannot read; all of it must be read.
  if (consumed === 0 || consumed !== trimmed.length) return undefined;
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

function secondsToMs(seconds: number): number | undefined {
  const ms = Math.round(seconds * 1000);
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : undefined;
}

/** "1h30m", "500ms", "0s": the compact spelling parseDuration reads back. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [name, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${name}`);
    rest -= count * size;
  }
  return parts.join('');
}

const SIZE_EXPECTED = 'a size like "25MB" or a number of bytes';
const DURATION_EXPECTED = 'a duration like "60s" or "5m"';

/** A size in bytes: a non-negative integer, or a string such as "25MB", "512KB", "1.5MiB", "10 kb" (K = 1024). */
export const sizeSchema = z
  .union([z.number(), z.string()], { error: expecting(SIZE_EXPECTED) })
  .transform((value, ctx) => {
    const bytes = typeof value === 'number' ? (Number.isSafeInteger(value) && value >= 0 ? value : undefined) : parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', input: value, message: `expected ${SIZE_EXPECTED}, got ${describeValue(value)}` });
      return z.NEVER;
    }
    return bytes;
  })
  .describe('Size in bytes: an integer, or a string like "25MB", "512KB", "1.5MiB"; KB/MB/GB are binary (1024) multiples, like KiB/MiB/GiB.');

/** A duration in milliseconds: a bare number is seconds; strings like "60s", "5m", "1h30m", "500ms", "2d". */
export const durationSchema = z
  .union([z.number(), z.string()], { error: expecting(DURATION_EXPECTED) })
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? (Number.isFinite(value) ? secondsToMs(value) : undefined) : parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', input: value, message: `expected ${DURATION_EXPECTED}, got ${describeValue(value)}` });
      return z.NEVER;
    }
    return ms;
  })
  .describe('Duration, output in milliseconds: a bare number is seconds; strings like "60s", "5m", "1h30m", "500ms", "2d".');
