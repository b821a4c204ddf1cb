/**
 * This package's version, and the check of a plugin's `core` field against it: a plugin
 * written for another major of `@mailgate/core` is refused at load with a clear error
 * instead of failing later on an API that moved.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The version of @mailgate/core (its package.json, read once). */
export function coreVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}

/**
 * Does `range` (a plugin's `core` field) accept `version`? Ranges are alternatives joined
 * by `||`, each a major (`1`, `1.x`, `0.*`) or a caret range (`^0.1`, `^1.2.3`, npm's
 * meaning: the same major, or for 0.x the same minor). Undefined: not a range we read.
 */
export function coreRangeAccepts(range: string, version: string): boolean | undefined {
  const v = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!v) return undefined;
  const [major, minor, patch] = [Number(v[1]), Number(v[2]), Number(v[3])];
  let accepted = false;
  for (const part of range.split('||').map((p) => p.trim())) {
    const plain = /^(\d+)(?:\.[x*])?$/.exec(part);
    if (plain) {
      accepted ||= Number(plain[1]) === major;
      continue;
    }
    const caret = /^\^(\d+)(?:\.(\d+)(?:\.(\d+))?)?$/.exec(part);
    if (!caret) return undefined;
    const [M, m, p] = [Number(caret[1]), Number(caret[2] ?? 0), Number(caret[3] ?? 0)];
    const atLeast = major > M || (major === M && (minor > m || (minor === m && patch >= p)));
    const sameLine = M > 0 ? major === M : caret[2] === undefined ? major === 0 : major === 0 && minor === m;
    accepted ||= atLeast && sameLine;
  }
  return accepted;
}
