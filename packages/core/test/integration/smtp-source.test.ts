/**
 * Postfix's smtp-source (a load generator that speaks plain RFC 821: HELO, never
 * EHLO) against a gateway built from YAML with the built-in discard plugin.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, gatewayFromYaml, type Gateway } from '@mailgate/core';
import { SMTP_SOURCE, haveTool, run } from './helpers.js';

const describeSource = haveTool(SMTP_SOURCE) ? describe : describe.skip;

describeSource('smtp-source → gateway (discard plugin)', () => {
  let gateway: Gateway;
  let port: number;
  let dir: string;
  const log: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailgate-smtp-source-'));
    gateway = await gatewayFromYaml(
      `hostname: mx.source.test
listen:
  - { host: 127.0.0.1, port: 0 }
spool: { dir: ${JSON.stringify(join(dir, 'spool'))} }
limits: { maxConnectionsPerIp: 100 }
plugins:
  - use: discard
    with: { domains: [example.test] }
`,
      { logger: createLogger({ level: 'info', write: (line) => log.push(JSON.parse(line) as Record<string, unknown>) }) },
    );
    port = (await gateway.listen())[0]!.port;
  });
  afterAll(async () => {
    await gateway?.close(1_000);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const accepted = () => log.filter((l) => l.msg === 'transaction' && l.result === 'accepted');

  it('smtp-source -s 5 -m 200 -l 1024 succeeds and every message is accepted', async () => {
    const before = accepted().length;
    const r = await run(SMTP_SOURCE, ['-s', '5', '-m', '200', '-l', '1024', '-f', 'a@x.test', '-t', 'b@example.test', `127.0.0.1:${port}`], { timeoutMs: 30_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(accepted().length - before).toBe(200);
    const sample = accepted().at(-1)!;
    expect(sample).toMatchObject({ from: 'a@x.test', rcpts: ['b@example.test (discard)'], tls: false });
    // smtp-source greets with HELO (never EHLO); the size logged is its 1024-byte payload plus headers.
    expect(sample.helo).toEqual(expect.any(String));
    expect(sample.size as number).toBeGreaterThan(1024);
  });

  it('smtp-source -d (many messages per connection) with 5 recipients each', async () => {
    const before = accepted().length;
    const r = await run(SMTP_SOURCE, ['-d', '-s', '2', '-m', '50', '-r', '5', '-l', '4096', '-f', 'a@x.test', '-t', 'b@example.test', `127.0.0.1:${port}`], { timeoutMs: 30_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const got = accepted().slice(before);
    expect(got).toHaveLength(50);
    expect((got[0]!.rcpts as string[]).length).toBe(5);
    expect(new Set(got.map((l) => l.session)).size).toBeLessThanOrEqual(2);
  });

  it('a recipient the discard plugin does not claim makes smtp-source fail (non-zero exit)', async () => {
    const r = await run(SMTP_SOURCE, ['-m', '1', '-f', 'a@x.test', '-t', 'b@elsewhere.test', `127.0.0.1:${port}`], { timeoutMs: 15_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/554/);
  });
});
