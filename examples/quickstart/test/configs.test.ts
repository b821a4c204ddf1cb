/** Every runnable YAML gateway in the repository passes `mailgate check` (core and plugin options). */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const CLI = join(ROOT, 'packages/core/bin/mailgate.js');
const built = existsSync(join(ROOT, 'packages/core/dist/cli.js'));

const CONFIGS = [
  'examples/quickstart/gateway.yaml',
  'examples/outbound-relay/gateway.yaml',
  'bench/gateway-discard.yaml',
  'bench/gateway-maildir.yaml',
  'bench/gateway-relay.yaml',
];

describe.skipIf(!built)('example and benchmark configs', () => {
  it.each(CONFIGS)('%s passes mailgate check', (config) => {
    const scratch = mkdtempSync(join(tmpdir(), 'mg-check-'));
    try {
      const result = spawnSync(process.execPath, [CLI, 'check', '-c', config], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, BENCH_MAILDIR: join(scratch, 'Maildir'), MAILDIR_ROOT: join(scratch, 'maildirs') },
      });
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain(`${config}: OK`);
      expect(result.status).toBe(0);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
