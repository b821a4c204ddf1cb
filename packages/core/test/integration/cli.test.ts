/**
 * The `mailgate` CLI as a real process: --help, check (good and bad configs, exit
 * codes, key paths with file:line:column), and serve (a message sent with swaks,
 * JSON and pretty logs, graceful exit on SIGTERM). Needs the built dist/ (run
 * `npx tsc -p packages/core/tsconfig.build.json` or `npx turbo run build` first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CORE_DIR, REPO_ROOT, SWAKS, freePort, haveTool, run } from './helpers.js';

const BIN = join(CORE_DIR, 'bin', 'mailgate.js');
const BUILT = existsSync(join(CORE_DIR, 'dist', 'cli.js'));
if (!BUILT) {
  console.warn('cli.test.ts: packages/core/dist/cli.js does not exist; run `npx tsc -p packages/core/tsconfig.build.json` to test the CLI');
}
const describeCli = BUILT ? describe : describe.skip;

function mailgate(args: string[], cwd: string) {
  return run(process.execPath, [BIN, ...args], { cwd, timeoutMs: 20_000 });
}

/** A long-running child with its stdout split into lines, and a way to wait for one. */
interface Server {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function serve(args: string[], cwd: string): Server {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  const lines: string[] = [];
  let partial = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      for (const w of waiters) w();
      res({ code, signal });
    }),
  );
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitForLine(predicate, timeoutMs = 10_000) {
      return new Promise((res, rej) => {
        const check = () => {
          const found = lines.find(predicate);
          if (found !== undefined) {
            cleanup();
            res(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            rej(new Error(`mailgate exited (${child.exitCode ?? child.signalCode}) before the expected line; stdout:\n${lines.join('\n')}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`no such line within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${err}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Exit within `ms` or fail (the child is killed by afterEach). */
function exitWithin(server: Server, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return Promise.race([
    server.exited,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`mailgate did not exit within ${ms} ms; stdout:\n${server.lines.join('\n')}`)), ms)),
  ]);
}

const GOOD = `# a small valid gateway
hostname: mx.cli.test
listen:
  - { host: 127.0.0.1, port: 2525 }
limits:
  maxMessageSize: 10MB
  idleTimeout: 30s
spool:
  dir: ./spool
shutdownTimeout: 5s
plugins:
  - use: discard
    with: { domains: [example.test] }
`;

const BAD = `hostname: mx.cli.test
listen:
  - { host: 127.0.0.1, port: 2525 }
limits:
  maxMessageSize: 10MB
  maxRecipents: 5
  idleTimeout: true
plugins:
  - use: discard
`;

const BAD_PLUGIN = `hostname: mx.cli.test
plugins:
  - use: discard
    with:
      domain: [example.test]
`;

describeCli('mailgate CLI (real process)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailgate-cli-'));
    await writeFile(join(dir, 'good.yaml'), GOOD);
    await writeFile(join(dir, 'bad.yaml'), BAD);
    await writeFile(join(dir, 'bad-plugin.yaml'), BAD_PLUGIN);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--help: exit 0, mentions serve and check', async () => {
    const r = await mailgate(['--help'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s+serve\s/m);
    expect(r.stdout).toMatch(/^\s+check\s/m);
    expect(r.stderr).toBe('');
  });

  it('--version prints the package version', async () => {
    const r = await mailgate(['--version'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('check -c good.yaml: exit 0 with a summary, no port opened', async () => {
    const r = await mailgate(['check', '-c', 'good.yaml'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('good.yaml: OK');
    expect(r.stdout).toMatch(/listen\s+127\.0\.0\.1:2525 \(tls: none\)/);
    expect(r.stdout).toMatch(/plugin\s+discard/);
  });

  it('check -c bad.yaml: exit 2, each problem with its key path and file:line:column', async () => {
    const r = await mailgate(['check', '-c', 'bad.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/bad\.yaml:6:3: limits\.maxRecipents: unknown key.*maxRecipients/);
    expect(r.stderr).toMatch(/bad\.yaml:7:16: limits\.idleTimeout: expected a duration/);
  });

  it("check: a plugin's own option errors are reported the same way", async () => {
    const r = await mailgate(['check', '-c', 'bad-plugin.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad-plugin\.yaml:5:7: plugins\[0\]\.with\.domain: unknown key.*domains/);
  });

  it('check of a missing file, and an unknown option: exit 2', async () => {
    const missing = await mailgate(['check', '-c', 'nope.yaml'], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml');
    const unknown = await mailgate(['check', '--no-such-option'], dir);
    expect(unknown.code).toBe(2);
  });

  it('check FILE without -c takes the file; a second one is a usage error', async () => {
    const r = await mailgate(['check', 'good.yaml'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('good.yaml: OK');
    const two = await mailgate(['check', 'good.yaml', 'bad.yaml'], dir);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('unexpected argument "bad.yaml"');
  });

  it('check reports TLS files that cannot be read, with their line, before any port opens', async () => {
    await writeFile(join(dir, 'tls.yaml'), `${GOOD}tls:\n  key: ./certs/key.pem\n  cert: ./certs/cert.pem\n`);
    const r = await mailgate(['check', '-c', 'tls.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tls\.yaml:15:8: tls\.key: cannot read the TLS private key: .*ENOENT/);
    expect(r.stderr).toMatch(/certs\/key\.pem/);
    // both missing files, at once
    expect(r.stderr).toMatch(/tls\.yaml:16:9: tls\.cert: cannot read the TLS certificate: .*ENOENT/);
  });

  it('COMMAND --help prints that command\'s usage; --help with a config lists its plugins\' commands', async () => {
    const serve = await mailgate(['serve', '--help'], dir);
    expect(serve.code).toBe(0);
    expect(serve.stdout).toMatch(/^Usage: mailgate serve /);
    expect(serve.stdout).toContain('SIGHUP');
    expect((await mailgate(['check', '--help'], dir)).stdout).toMatch(/^Usage: mailgate check /);
    expect((await mailgate(['passwd', '--help'], dir)).stdout).toMatch(/^Usage: mailgate passwd /);
    await writeFile(
      join(dir, 'with-command.js'),
      `const plugin = { name: 'archive', setup() {}, commands: { archive: { summary: 'export the archive as mbox', usage: 'mailgate archive export', async run() { return 0; } } } };
Object.defineProperty(plugin, Symbol.for('mailgate.plugin'), { value: true });
export default Object.freeze(plugin);
`,
    );
    await writeFile(join(dir, 'commands.yaml'), `${GOOD}  - use: ./with-command.js\n`);
    const help = await mailgate(['--help', '-c', 'commands.yaml'], dir);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Commands from the plugins of commands\.yaml.*\n  archive +export the archive as mbox +\(archive\)/);
  });

  it('output into a pipe whose reader is gone (mailgate … | head): quiet exit, no stack trace', async () => {
    const child = spawn(process.execPath, [BIN, '--help'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.destroy(); // the reader is gone before the first write
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('a plugin command without a config says where such commands come from', async () => {
    const r = await mailgate(['queue', '--help'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "queue": commands other than serve, check and passwd come from the plugins of a config');
    expect(r.stderr).toContain('-c FILE');
  });

  it.runIf(haveTool(SWAKS))('serve: takes a message from swaks, logs JSON lines, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const server = serve(['-c', 'good.yaml', '--listen', `127.0.0.1:${port}`], dir);
    const listening = await server.waitForLine((l) => l.includes('"listening"'));
    expect(JSON.parse(listening)).toMatchObject({ level: 'info', msg: 'listening', host: '127.0.0.1', port });

    const r = await run(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--from', 'cli@sender.test', '--to', 'one@example.test', '--ehlo', 'client.test', '--timeout', '10'], {
      cwd: REPO_ROOT,
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/<- {2}220 mx\.cli\.test ESMTP/);
    const refused = await run(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--from', 'cli@sender.test', '--to', 'x@elsewhere.test', '--timeout', '10'], {
      cwd: REPO_ROOT,
    });
    expect(refused.code).toBe(24);

    const tx = await server.waitForLine((l) => l.includes('"transaction"'));
    const started = Date.now();
    server.child.kill('SIGTERM');
    const exit = await exitWithin(server, 5_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(5_000);

    const records = server.lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThanOrEqual(3);
    for (const rec of records) expect(rec).toMatchObject({ time: expect.any(String), level: expect.any(String), msg: expect.any(String) });
    expect(JSON.parse(tx)).toMatchObject({ msg: 'transaction', from: 'cli@sender.test', rcpts: ['one@example.test (discard)'], result: 'accepted', helo: 'client.test' });
    expect(records.some((rec) => rec.msg === 'shutting down' && rec.signal === 'SIGTERM')).toBe(true);
    expect(server.stderr()).toBe('');
  });

  it.runIf(haveTool(SWAKS))('serve --log-format pretty: human-readable lines, not JSON', async () => {
    const port = await freePort();
    const server = serve(['-c', 'good.yaml', '--listen', `127.0.0.1:${port}`, '--log-format', 'pretty'], dir);
    const listening = await server.waitForLine((l) => / listening /.test(l));
    expect(listening).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO {2}listening host=127\.0\.0\.1 port=\d+/);
    const r = await run(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--from', 'p@sender.test', '--to', 'two@example.test', '--timeout', '10']);
    expect(r.code, r.stdout).toBe(0);
    const tx = await server.waitForLine((l) => / transaction /.test(l));
    expect(tx).toMatch(/ from=p@sender\.test /);
    expect(tx).toMatch(/ result=accepted /);
    expect(() => JSON.parse(tx)).toThrow();
    server.child.kill('SIGINT');
    expect(await exitWithin(server, 5_000)).toEqual({ code: 0, signal: null });
  });

  it('serve with an idle client connected: SIGTERM says 421 to it and still exits promptly', async () => {
    const port = await freePort();
    const server = serve(['-c', 'good.yaml', '--listen', `127.0.0.1:${port}`], dir);
    await server.waitForLine((l) => l.includes('"listening"'));
    const { SmtpTestClient } = await import('@mailgate/core/testing');
    const client = await SmtpTestClient.connect(port);
    try {
      expect((await client.read()).code).toBe(220);
      server.child.kill('SIGTERM');
      expect((await client.read()).raw).toMatch(/^421 4\.3\.2 /);
      expect(await exitWithin(server, 5_000)).toEqual({ code: 0, signal: null });
    } finally {
      client.close();
    }
  });

  it('serve on a port that is taken: exits non-zero with a message, does not hang', async () => {
    const port = await freePort();
    const first = serve(['-c', 'good.yaml', '--listen', `127.0.0.1:${port}`], dir);
    await first.waitForLine((l) => l.includes('"listening"'));
    const second = serve(['-c', 'good.yaml', '--listen', `127.0.0.1:${port}`], dir);
    const exit = await exitWithin(second, 5_000);
    expect(exit.code).not.toBe(0);
    expect(second.stderr() + second.lines.join('\n')).toMatch(/EADDRINUSE|in use/i);
    first.child.kill('SIGTERM');
    expect(await exitWithin(first, 5_000)).toEqual({ code: 0, signal: null });
  });
});
