/**
 * startMailgate (@mailgate/core/testing) on the real CLI: it resolves once `serve`
 * listens, stops it cleanly, and when the CLI fails to start (or never prints what
 * it waits for) it rejects with the CLI's own output. Needs the built dist/.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, SmtpTestClient, startMailgate, type MailgateProcess } from '@mailgate/core/testing';
import { CORE_DIR } from './helpers.js';

const BUILT = existsSync(join(CORE_DIR, 'dist', 'cli.js'));
if (!BUILT) console.warn('start-mailgate.test.ts: packages/core/dist/cli.js does not exist; run `npx turbo run build` to test startMailgate');

/** A gateway on `port`; `${GREETING_NAME}` shows whether `env` reached the child. */
const config = (port: number): string => `hostname: \${GREETING_NAME:-mx.test}
listen: [{ host: 127.0.0.1, port: ${port} }]
spool: { dir: ./spool }
shutdownTimeout: 2s
plugins:
  - use: discard
    with: { domains: [example.test] }
`;

describe.skipIf(!BUILT)('startMailgate', () => {
  let dir: string;
  const started: MailgateProcess[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mg-start-mailgate-'));
    await writeFile(join(dir, 'bad.yaml'), 'hostname: mx.test\nlimits:\n  maxRecipents: 5\n');
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((m) => m.kill()));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('resolves once `serve` is listening; stop() ends it with exit 0', async () => {
    const port = await freePort();
    await writeFile(join(dir, 'gateway.yaml'), config(port));
    const mailgate = await startMailgate(['serve', '-c', 'gateway.yaml'], { cwd: dir, env: { GREETING_NAME: 'mx.from-env.test' } });
    started.push(mailgate);
    expect(mailgate.output()).toContain('"msg":"listening"');
    const client = await SmtpTestClient.connect(port);
    expect((await client.read()).lines[0]).toMatch(/^mx\.from-env\.test ESMTP/);
    client.close();
    expect(await mailgate.stop()).toEqual({ code: 0, signal: null });
    expect(mailgate.gone).toBe(true);
    expect(mailgate.stdout()).toContain('"msg":"shutting down"');
  });

  it('waits for a RegExp: with --listen 127.0.0.1:0 the port is read from the log line', async () => {
    await writeFile(join(dir, 'gateway.yaml'), config(2525));
    const listening = /"msg":"listening".*?"port":(\d+)/;
    const mailgate = await startMailgate(['serve', '-c', 'gateway.yaml', '--listen', '127.0.0.1:0'], { cwd: dir, waitFor: listening });
    started.push(mailgate);
    const port = Number(listening.exec(mailgate.output())![1]);
    const client = await SmtpTestClient.connect(port);
    expect((await client.read()).code).toBe(220);
    client.close();
    await mailgate.kill();
    expect(await mailgate.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('rejects with the CLI\'s error when the process exits before it is listening', async () => {
    const failed = startMailgate(['serve', '-c', 'bad.yaml'], { cwd: dir });
    await expect(failed).rejects.toThrow(/^mailgate serve -c bad\.yaml: exited \(2\) before "listening" was seen; its output:\n/);
    await expect(failed).rejects.toThrow('bad.yaml:3:3: limits.maxRecipents: unknown key (did you mean "maxRecipients"?)');
  });

  it('rejects with the output so far when `waitFor` is not seen in time, and kills the process', async () => {
    const port = await freePort();
    await writeFile(join(dir, 'gateway.yaml'), config(port));
    const failed = startMailgate(['serve', '-c', 'gateway.yaml'], { cwd: dir, waitFor: 'never printed', timeoutMs: 1_500 });
    await expect(failed).rejects.toThrow(/"never printed" not seen within 1500 ms; its output:\n.*"msg":"listening"/);
    await expect(SmtpTestClient.connect(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('waitFor: false resolves at once, for one-shot commands such as `check`', async () => {
    const mailgate = await startMailgate(['check', '-c', 'bad.yaml'], { cwd: dir, waitFor: false });
    started.push(mailgate);
    expect(await mailgate.exited).toEqual({ code: 2, signal: null });
    expect(mailgate.stderr()).toContain('limits.maxRecipents: unknown key');
    expect(mailgate.stdout()).toBe('');
  });
});
