/**
 * This package's version, and the check of a plugin's `core` field against it: a plugin
 * written for another major of `@mailgate/core` is refused at load with a clear error
 * instead of failing later on an API that moved.
 */
import { readFileSync } from 'node:fs';
import semver from 'semver';

let cached: string | undefined;

/** The version of @mailgate/core (its package.json, read once). */
export function coreVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}

/**
 * Does `range` (a plugin's `core` field) accept `version`? Any npm range (`0.x`, `1`,
 * `^0.1`, `>=0.1.0 <2`, `0.x || 1`), read the way npm reads a peerDependencies range.
 * Undefined: not a range npm would read.
 */
export function coreRangeAccepts(range: string, version: string): boolean | undefined {
  if (range.trim() === '' || semver.validRange(range) === null) return undefined;
  return semver.satisfies(version, range, { includePrerelease: true });
}
