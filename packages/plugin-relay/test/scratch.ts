/** A temporary directory for the tests of one file: made before them, removed after them. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export function useScratchDir(prefix: string): { readonly dir: string; fresh(name: string): string } {
  let dir = '';
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    /** A path in it not handed out before: `<dir>/<name><n>`. */
    fresh: (name) => join(dir, `${name}${count++}`),
  };
}
