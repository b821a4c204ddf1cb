/**
 * Shared by the plugin, end-to-end and CLI tests: a DNS zone with a DNSBL, an RHSBL,
 * a URI blocklist and SPF records, served by the core's test DNS server on loopback; a
 * storage plugin that claims every recipient and records what it was given; messages.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { accept, createGateway, definePlugin, DnsResolver, silentLogger, type Gateway, type GatewayConfigInput } from '@mailgate/core';
import { startTestDnsServer, type TestDnsServer, type TestZone } from '@mailgate/core/testing';
import { spamPlugin, type SpamOptionsInput, type SpamResult } from '../src/index.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const SHARED_DATA = resolve(REPO_ROOT, '../shared/data');
export const CORPUS_TARBALL = resolve(SHARED_DATA, 'spamassassin-public-corpus/sa-public-corpus-5groups.tar.gz');
export const DESIGN_MD = resolve(REPO_ROOT, '../shared/DESIGN.md');
export const SWAKS = '/usr/bin/swaks';
export const haveSwaks = existsSync(SWAKS);

/**
 * Who is listed where (loopback clients: 127.0.0.2 is listed, 127.0.0.1 is not; the
 * documentation nets for sessions on bytes):
 *
 * - zen.example (DNSBL): 127.0.0.2, 192.0.2.66, 2001:db8::66
 * - wl.example (DNSWL): 192.0.2.77
 * - slow.example: never answers (timeouts)
 * - dbl.example (RHSBL): spammer.example; uribl.example: spam-link.example
 * - SPF: spf-pass.example allows 127.0.0.1 and 192.0.2.0/24, fails everyone else;
 *   spf-soft.example softfails everyone; helo.example allows 127.0.0.0/8
 */
export const SPAM_ZONE: TestZone = {
  '2.0.0.127.zen.example': { A: ['127.0.0.2'], TXT: ['Listed, see https://zen.example/query/127.0.0.2'] },
  '66.2.0.192.zen.example': { A: ['127.0.0.4'] },
  ['6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example']: { A: ['127.0.0.2'] },
  '77.2.0.192.wl.example': { A: ['127.0.10.2'] },
  '2.0.0.127.wl.example': { A: ['127.0.10.2'] },
  '66.2.0.192.slow.example': { A: ['127.0.0.2'], drop: true },
  '2.0.0.127.slow.example': { A: ['127.0.0.2'], drop: true },
  '1.0.0.127.slow.example': { A: ['127.0.0.2'], drop: true },
  'spammer.example.dbl.example': { A: ['127.0.1.2'] },
  'spam-link.example.uribl.example': { A: ['127.0.0.2'] },
  'spf-pass.example': { TXT: ['v=spf1 ip4:127.0.0.1 ip4:192.0.2.0/24 -all'] },
  'spf-soft.example': { TXT: ['v=spf1 ~all'] },
  'spammer.example': { TXT: ['v=spf1 -all'] },
  'helo.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
};

/** A test DNS server and a resolver pointed at it. */
export interface TestDns {
  server: TestDnsServer;
  resolver: DnsResolver;
}

/**
 * For a whole test file (or describe block): the DNS server `start` gives, a scratch
 * directory (`path(name)`), and cleanups (gateways) run after its tests, newest first.
 */
export function useDnsFixture(start: () => Promise<TestDns>): { readonly dns: TestDns; readonly cleanups: Array<() => Promise<void>>; path(name: string): string } {
  let started: TestDns | undefined;
  let dir: string | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    started = await start();
    dir = await mkdtemp(join(tmpdir(), 'spam-test-'));
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await started?.server.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the fixture starts in beforeAll');
    return value;
  };
  return {
    dns: {
      get server() {
        return need(started).server;
      },
      get resolver() {
        return need(started).resolver;
      },
    },
    cleanups,
    path: (name) => join(need(dir), name),
  };
}

export async function startSpamDns(extra: TestZone = {}): Promise<TestDns> {
  const server = await startTestDnsServer({ ...SPAM_ZONE, ...extra });
  // Short timeouts: the "slow" zone must cost the tests little.
  const resolver = new DnsResolver({ servers: [server.address], timeout: 300, retries: 1 });
  return { server, resolver };
}

/** Options with the lists of SPAM_ZONE and only the custom rules of the tests (no default rules), so scores are exact. */
export function testOptions(overrides: SpamOptionsInput = {}): SpamOptionsInput {
  return {
    dnsbl: [{ zone: 'zen.example', weight: 4 }],
    rhsbl: [{ zone: 'dbl.example', weight: 3 }],
    uribl: [{ zone: 'uribl.example', weight: 2.5 }],
    rules: {
      defaults: false,
      custom: [
        { name: 'TEST_SPAMMY', body: true, pattern: 'cheap-pills', score: 6, describe: 'Sells cheap pills' },
        { name: 'TEST_VERY_SPAMMY', body: true, pattern: 'wire-transfer-now', score: 12, describe: 'Wants money' },
        { name: 'TEST_SUBJECT', header: 'Subject', pattern: '/^WINNER/i', score: 20, describe: 'Subject says WINNER' },
      ],
    },
    ...overrides,
  };
}

export interface Stored {
  sender: string;
  recipients: string[];
  /** The whole message as stored (added headers first). */
  full: string;
  spam: SpamResult | undefined;
  user: string | undefined;
}

/** A storage plugin that claims every recipient and records each message it is given at `queue`. */
export function captureStorage() {
  const stored: Stored[] = [];
  const plugin = definePlugin({
    name: 'test-storage',
    setup({ tap }) {
      tap('claim', () => accept());
      tap('queue', async (session, tx) => {
        // Only the head: the 50 MB test must not fill the test's own memory either.
        const parts: Buffer[] = [];
        let size = 0;
        for await (const chunk of tx.message!.stream()) {
          if (size < 1024 * 1024) parts.push(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        stored.push({
          sender: tx.senderText,
          recipients: tx.recipients.map((r) => r.text),
          full: Buffer.concat(parts).toString('latin1'),
          spam: tx.data.spam,
          user: session.user,
        });
        return accept();
      });
    },
  });
  return { plugin, stored };
}

/** A plugin that accepts AUTH for one user. */
export function authAnyone(user = 'alice', password = 'secret') {
  return definePlugin({
    name: 'test-auth',
    setup({ tap }) {
      tap('auth', (_s, creds) => (creds.username === user && creds.password === password ? accept() : undefined));
    },
  });
}

/** A gateway on bytes (for testSession) with the spam plugin and the capturing storage. */
export async function spamGateway(
  resolver: DnsResolver,
  options: SpamOptionsInput,
  config: GatewayConfigInput = {},
): Promise<{ gateway: Gateway; stored: Stored[] }> {
  const gateway = createGateway({ hostname: 'mx.test', ...config }, { logger: silentLogger, dns: resolver });
  const capture = captureStorage();
  await gateway.use(authAnyone());
  await gateway.use(spamPlugin, options);
  await gateway.use(capture.plugin);
  return { gateway, stored: capture.stored };
}

/** A small RFC 5322 message with CRLF line ends. */
export function message(fields: { from?: string; subject?: string; body?: string; headers?: string[]; date?: boolean } = {}): string {
  const lines = [
    `From: ${fields.from ?? 'Ann <ann@spf-pass.example>'}`,
    'To: bob@example.test',
    `Subject: ${fields.subject ?? 'Lunch on Friday'}`,
    ...(fields.date === false ? [] : ['Date: ' + new Date().toUTCString().replace('GMT', '+0000')]),
    'Message-ID: <test-1@spf-pass.example>',
    ...(fields.headers ?? []),
    '',
    ...(fields.body ?? 'Shall we meet at noon?\nAnn').split('\n'),
  ];
  return lines.join('\r\n') + '\r\n';
}

/** SMTP DATA for `text` (dot-stuffed, terminated). */
export function dataOf(text: string): string {
  return text.replace(/^\./gm, '..') + '.\r\n';
}

/** A header of a stored message (first occurrence), unfolded; undefined if absent. */
export function headerOf(full: string, name: string): string | undefined {
  const end = full.indexOf('\r\n\r\n');
  const head = (end < 0 ? full : full.slice(0, end)).replace(/\r\n[ \t]/g, ' ');
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  return re.exec(head)?.[1];
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program without a shell, with a hard timeout. */
export function run(command: string, args: readonly string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
