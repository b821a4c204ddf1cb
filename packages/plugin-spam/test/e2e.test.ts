/**
 * End to end over real sockets: real clients (nodemailer, swaks) on loopback talk to a
 * gateway whose plugin-spam asks a real DNS server on loopback. Clients bind 127.0.0.2
 * (listed in zen.example) or 127.0.0.1 (not listed).
 */
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, gatewayFromYaml, loadGateway, silentLogger, type DnsResolver } from '@mailgate/core';
import { generateTestCertificate, startTestGateway, type TestDnsServer, type TestGateway } from '@mailgate/core/testing';
import { spamPlugin, type SpamOptionsInput } from '../src/index.js';
import { authAnyone, captureStorage, DESIGN_MD, haveSwaks, headerOf, message, REPO_ROOT, run, startSpamDns, SWAKS, testOptions, type Stored } from './helpers.js';

type TransportOptions = Parameters<typeof nodemailer.createTransport>[0];

let dns: { server: TestDnsServer; resolver: DnsResolver };
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dns = await startSpamDns();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await dns.server.close();
});

async function start(options: SpamOptionsInput, config: Parameters<typeof startTestGateway>[0] = {}): Promise<{ gw: TestGateway; stored: Stored[] }> {
  const capture = captureStorage();
  const gw = await startTestGateway(
    { smtp: { authWithoutTls: true }, ...config },
    async (g) => {
      await g.use(authAnyone());
      await g.use(spamPlugin, options);
      await g.use(capture.plugin);
    },
    { logger: silentLogger, dns: dns.resolver },
  );
  cleanups.push(() => gw.close());
  return { gw, stored: capture.stored };
}

function transport(port: number, localAddress = '127.0.0.1', extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    localAddress,
    secure: false,
    ignoreTLS: true,
    name: 'client.example',
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
    socketTimeout: 20_000,
    ...extra,
  } as TransportOptions);
}

const envelope = { from: 'ann@spf-pass.example', to: ['bob@example.test'] };

describe('nodemailer', () => {
  it('a listed client gets 550 at RCPT when its envelope score reaches reject', async () => {
    const { gw, stored } = await start(testOptions({ dnsbl: [{ zone: 'zen.example', weight: 15 }] }));
    const error = (await transport(gw.port, '127.0.0.2')
      .sendMail({ envelope, raw: message() })
      .catch((e: unknown) => e)) as { responseCode?: number; response?: string };
    expect(error.responseCode).toBe(550);
    expect(error.response).toMatch(/^550 5\.7\.1 Service unavailable; client \[127\.0\.0\.2\] blocked using zen\.example/);
    expect(stored).toHaveLength(0);
  });

  it('a tagged message arrives with X-Spam headers and Received-SPF', async () => {
    const { gw, stored } = await start(testOptions({ headers: { report: true } }));
    const info = await transport(gw.port, '127.0.0.2').sendMail({ envelope, raw: message({ body: 'cheap-pills at http://spam-link.example/buy' }) });
    expect(info.response).toMatch(/^250 /);
    expect(stored).toHaveLength(1);
    const { full, spam } = stored[0]!;
    // 4 (zen.example) + 6 (TEST_SPAMMY) + 2.5 (uribl) + SPF_FAIL (127.0.0.2 is not allowed by
    // spf-pass.example) + SPF_HELO_NONE (client.example has no SPF record).
    expect(spam!.tests.map((t) => t.name).sort()).toEqual(['RCVD_IN_ZEN_EXAMPLE', 'SPF_FAIL', 'SPF_HELO_NONE', 'TEST_SPAMMY', 'URIBL_URIBL_EXAMPLE']);
    expect(spam!.score).toBeCloseTo(4 + 6 + 2.5 + 0.919 + 0.001, 3);
    expect(headerOf(full, 'X-Spam-Flag')).toBe('YES');
    expect(headerOf(full, 'X-Spam-Score')).toBe('13.4');
    // Folded after a comma, as SpamAssassin does (headerOf unfolds CRLF TAB to a space).
    expect(headerOf(full, 'X-Spam-Status')).toBe('Yes, score=13.4 required=5.0 tests=RCVD_IN_ZEN_EXAMPLE, SPF_FAIL,SPF_HELO_NONE,TEST_SPAMMY,URIBL_URIBL_EXAMPLE');
    expect(headerOf(full, 'X-Spam-Report')).toContain('*  4.0 RCVD_IN_ZEN_EXAMPLE client 127.0.0.2 listed in zen.example (127.0.0.2)');
    expect(headerOf(full, 'Received-SPF')).toMatch(/^fail \(mx\.test: domain of ann@spf-pass\.example does not designate 127\.0\.0\.2 as permitted sender\)/);
  });

  it('a clean client passes SPF and is not flagged', async () => {
    const { gw, stored } = await start(testOptions());
    await transport(gw.port, '127.0.0.1').sendMail({ envelope, raw: message() });
    const { full, spam } = stored[0]!;
    expect(spam).toMatchObject({ action: 'accept', flagged: false });
    expect(headerOf(full, 'Received-SPF')).toMatch(/^pass /);
    expect(headerOf(full, 'X-Spam-Flag')).toBeUndefined();
  });

  it('DNS timeouts do not reject', async () => {
    const { gw, stored } = await start(testOptions({ dnsbl: [{ zone: 'slow.example', weight: 20 }] }));
    const info = await transport(gw.port, '127.0.0.2').sendMail({ envelope, raw: message() });
    expect(info.response).toMatch(/^250 /);
    expect(stored[0]!.spam!.tests.map((t) => t.name)).not.toContain('RCVD_IN_SLOW_EXAMPLE');
  });

  it('a 50 MB message is accepted with envelope checks only, in bounded memory', async () => {
    const { gw, stored } = await start(testOptions(), { limits: { maxMessageSize: '60MB' }, spool: { memoryThreshold: '1MB' } });
    const size = 50 * 1024 * 1024;
    const line = `${'cheap-pills '.repeat(6)}\r\n`;
    const head = Buffer.from(message({ body: '' }));
    const chunk = Buffer.from(line.repeat(Math.floor(65536 / line.length)));
    const body = Readable.from(
      (function* () {
        yield head;
        for (let sent = head.length; sent < size; sent += chunk.length) yield chunk;
      })(),
    );
    global.gc?.();
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
    try {
      const info = await transport(gw.port, '127.0.0.2').sendMail({ envelope, raw: body });
      expect(info.response).toMatch(/^250 /);
    } finally {
      clearInterval(sampler);
    }
    const spam = stored[0]!.spam!;
    expect(spam.contentChecked).toBe(false);
    expect(spam.tests.map((t) => t.name).sort()).toEqual(['RCVD_IN_ZEN_EXAMPLE', 'SPF_FAIL', 'SPF_HELO_NONE']);
    expect(headerOf(stored[0]!.full, 'X-Spam-Status')).toMatch(/^No, score=4\.9 /);
    // Reading the message whole would cost 50 MB at once; client, spool and scanner together stay far under.
    console.log(`50 MB message: peak Buffer memory +${((peak - baseline) / 1048576).toFixed(1)} MB`);
    expect(peak - baseline).toBeLessThan(24 * 1024 * 1024);
  }, 60_000);
});

describe.skipIf(!haveSwaks)('swaks', () => {
  const swaks = (port: number, args: string[]) =>
    run(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--ehlo', 'client.example', '--timeout', '15', '--from', 'ann@spf-pass.example', '--to', 'bob@example.test', ...args]);

  it('a message over reject gets 550 after DATA and is not stored', async () => {
    const { gw, stored } = await start(testOptions());
    const r = await swaks(gw.port, ['--header', 'Subject: WINNER of the lottery', '--body', 'You won.']);
    expect(r.stdout).toMatch(/<\*\* +550 5\.7\.1 Message rejected as spam/);
    expect(r.code).not.toBe(0);
    expect(stored).toHaveLength(0);
  });

  it('the tempfail band gets 451 4.7.1', async () => {
    const { gw, stored } = await start(testOptions({ tempfail: 10 }));
    const r = await swaks(gw.port, ['--body', 'Please do a wire-transfer-now.']);
    expect(r.stdout).toMatch(/<\*\* +451 4\.7\.1 /);
    expect(stored).toHaveLength(0);
  });

  it('an authenticated client is not scored, even from a listed address', async () => {
    const { gw, stored } = await start(testOptions({ dnsbl: [{ zone: 'zen.example', weight: 20 }] }));
    const r = await swaks(gw.port, ['--local-interface', '127.0.0.2', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'secret', '--header', 'Subject: WINNER']);
    expect(r.code).toBe(0);
    expect(stored[0]).toMatchObject({ user: 'alice', spam: { skipped: 'authenticated', score: 0 } });
    expect(headerOf(stored[0]!.full, 'X-Spam-Status')).toBeUndefined();
  });

  it('a trusted client is not scored', async () => {
    const { gw, stored } = await start(testOptions({ trustedNetworks: ['127.0.0.2'] }));
    const r = await swaks(gw.port, ['--local-interface', '127.0.0.2', '--header', 'Subject: WINNER']);
    expect(r.code).toBe(0);
    expect(stored[0]!.spam).toMatchObject({ skipped: 'trusted' });
  });
});

describe('YAML', () => {
  /** The example config of ../shared/DESIGN.md, with plugins pointed at this checkout's sources. */
  async function designExample(): Promise<string | undefined> {
    const design = await readFile(DESIGN_MD, 'utf8').catch(() => undefined);
    const yaml = design && /```yaml\n([\s\S]*?)```/.exec(design)?.[1];
    if (!yaml) return undefined;
    const src = (name: string) => JSON.stringify(resolve(REPO_ROOT, `packages/${name}/src/index.ts`));
    return yaml
      .replace('"@mailgate/plugin-acl"', src('plugin-acl'))
      .replace('"@mailgate/plugin-spam"', src('plugin-spam'))
      .replace('"@mailgate/plugin-maildir"', src('plugin-maildir'));
  }

  it('the DESIGN.md example config loads with loadGateway and scores mail', async (ctx) => {
    const yaml = await designExample();
    if (!yaml) return ctx.skip('../shared/DESIGN.md or its yaml example is missing');
    expect(yaml).toContain('with: { reject: 15, tag: 5, dnsbl: [{ zone: zen.example, weight: 4 }] }');
    // Inside the checkout, so that ./plugins/my-plugin.js finds @mailgate/core.
    const dir = await mkdtemp(join(import.meta.dirname, 'tmp-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const cert = await generateTestCertificate('mx.example.test');
    await mkdir(join(dir, 'certs'));
    await mkdir(join(dir, 'plugins'));
    await writeFile(join(dir, 'certs/key.pem'), cert.key);
    await writeFile(join(dir, 'certs/cert.pem'), cert.cert);
    await writeFile(join(dir, 'plugins/my-plugin.js'), "import { definePlugin } from '@mailgate/core';\nexport default definePlugin({ name: 'my-plugin', setup() {} });\n");
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, yaml);
    const gateway = await loadGateway(file, {
      logger: silentLogger,
      dns: dns.resolver,
      overrides: { listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: join(dir, 'spool') } },
    });
    const [address] = await gateway.listen();
    cleanups.push(() => gateway.close(1_000));
    const info = await transport(address!.port, '127.0.0.2').sendMail({ envelope: { from: 'ann@spf-pass.example', to: ['bob@example.test'] }, raw: message() });
    expect(info.response).toMatch(/^250 /);
    const newDir = join(dir, 'var/maildir/example.test/bob/new');
    const [delivered] = await readdir(newDir);
    const stored = await readFile(join(newDir, delivered!), 'latin1');
    expect(headerOf(stored, 'X-Spam-Status')).toMatch(/^No, score=4\.9 required=5\.0 tests=RCVD_IN_ZEN_EXAMPLE, ?SPF_FAIL, ?SPF_HELO_NONE$/);
    expect(headerOf(stored, 'Received-SPF')).toMatch(/^fail /);
  });

  it('gatewayFromYaml reports a wrong option with its key path and line', async () => {
    const spam = JSON.stringify(resolve(REPO_ROOT, 'packages/plugin-spam/src/index.ts'));
    const load = async (withYaml: string) => {
      const yaml = `hostname: mx.test\nplugins:\n  - use: ${spam}\n    with:\n${withYaml}`;
      const error = await gatewayFromYaml(yaml, { file: 'gw.yaml', logger: silentLogger }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).message;
    };
    expect(await load('      dnsbl: [{ zone: zen.example, wieght: 4 }]\n')).toMatch(/gw\.yaml:5:\d+: plugins\[0\]\.with\.dnsbl\[0\]\.wieght: unknown key \(did you mean "weight"\?\)/);
    expect(await load('      tag: 5\n      reject: 15\n      tempfail: 20\n')).toMatch(/gw\.yaml:7:\d+: plugins\[0\]\.with\.tempfail: must be less than reject \(15\)/);
    expect(await load('      trustedNetworks: [10.0.0.0/8, 300.1.1.1]\n')).toMatch(/gw\.yaml:5:\d+: plugins\[0\]\.with\.trustedNetworks\[1\]: expected an IP address/);
    expect(await load('      bayes: { file: ./missing-dir/bayes.db, minSpam: -1 }\n')).toMatch(/plugins\[0\]\.with\.bayes\.minSpam/);
  });
});
