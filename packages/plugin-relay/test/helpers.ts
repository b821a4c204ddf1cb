import { once } from 'node:events';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createLogger, definePlugin, accept, reject, tempfail, DnsResolver, type RecipientDsn, type TransactionDsn, type Verdict } from '@mailgate/core';
import { startTestGateway, startTestDnsServer, SmtpTestClient, type TestDnsServer, type TestGateway, type TestZone } from '@mailgate/core/testing';
import relay, { relayHooks, type RelayOptionsInput, type DeliveredEvent, type DeferredEvent, type BouncedEvent } from '../src/index.js';

/** Stand-in for plugin-acl: every non-local recipient may be relayed. */
export const allowRelay = definePlugin({
  name: 'test-allow-relay',
  setup({ tap, gateway }) {
    tap('rcpt', (_s, _tx, rcpt) => {
      if (!gateway.isLocalDomain(rcpt.address.domain)) rcpt.data.relayAllowed = true;
      return undefined;
    });
  },
});

export interface Received {
  user: string | undefined;
  session: string;
  from: string;
  to: string[];
  data: string;
  bodyType: string;
  tls: boolean;
  /** MAIL carried SMTPUTF8. */
  smtputf8: boolean;
  /** MAIL's DSN parameters as this receiver decoded them. */
  dsn: TransactionDsn | undefined;
  /** Each recipient's DSN parameters, in `to` order. */
  rcptDsn: Array<RecipientDsn | undefined>;
}

export interface Receiver {
  gw: TestGateway;
  port: number;
  messages: Received[];
  /** Recipients seen at RCPT, with the verdict given. */
  rcptLog: string[];
  /** Most messages being received at the same time. */
  maxParallel: number;
  close(): Promise<void>;
}

/**
 * A second Mailgate instance as the receiving server: claims every recipient,
 * keeps the messages in memory; `policy` may refuse recipients.
 */
export async function startReceiver(
  options: { policy?: (rcpt: string, attempt: number) => Verdict | undefined; tls?: { keyFile: string; certFile: string }; delayMs?: number; port?: number; auth?: { user: string; pass: string }; config?: Record<string, unknown> } = {},
): Promise<Receiver> {
  const messages: Received[] = [];
  const rcptLog: string[] = [];
  const attempts = new Map<string, number>();
  let parallel = 0;
  const stats = { maxParallel: 0 };
  const sink = definePlugin({
    name: 'test-sink',
    setup({ tap }) {
      if (options.auth) {
        const { user, pass } = options.auth;
        tap('auth', (_s, creds) => (creds.username === user && creds.password === pass ? accept() : undefined));
      }
      tap('claim', (_s, _tx, rcpt) => {
        const n = (attempts.get(rcpt.text) ?? 0) + 1;
        attempts.set(rcpt.text, n);
        const verdict = options.policy?.(rcpt.text, n);
        rcptLog.push(`${rcpt.text}:${verdict?.kind ?? 'accept'}`);
        return verdict ?? accept();
      });
      tap('queue', async (session, tx) => {
        const data = (await tx.message!.toBuffer()).toString('latin1');
        stats.maxParallel = Math.max(stats.maxParallel, ++parallel);
        if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
        parallel--;
        messages.push({
          user: session.user,
          session: session.id,
          bodyType: tx.bodyType,
          from: tx.senderText,
          to: tx.recipients.map((r) => r.text),
          data,
          tls: session.tls !== undefined,
          dsn: tx.dsn,
          smtputf8: tx.smtputf8,
          rcptDsn: tx.recipients.map((r) => r.dsn),
        });
        return accept();
      });
    },
  });
  const gw = await startTestGateway(
    {
      hostname: 'receiver.test',
      ...options.config,
      ...(options.port ? { listen: [{ host: '127.0.0.1', port: options.port }] } : {}),
      ...(options.tls ? { tls: { key: options.tls.keyFile, cert: options.tls.certFile }, listen: [{ host: '127.0.0.1', port: 0, tls: 'starttls' as const }] } : {}),
    },
    async (g) => {
      await g.use(sink);
    },
  );
  return {
    gw,
    port: gw.port,
    messages,
    rcptLog,
    get maxParallel() {
      return stats.maxParallel;
    },
    close: () => gw.close(),
  };
}

export { accept, reject, tempfail };

export interface Events {
  delivered: DeliveredEvent[];
  deferred: DeferredEvent[];
  bounced: BouncedEvent[];
}

export interface Relayer {
  gw: TestGateway;
  events: Events;
  close(): Promise<void>;
}

/** The gateway under test: allow-relay + the relay plugin, resolving with `dns`. */
export async function startRelayer(relayOptions: RelayOptionsInput, dnsAddress: string, config: Record<string, unknown> = {}): Promise<Relayer> {
  const events: Events = { delivered: [], deferred: [], bounced: [] };
  const gw = await startTestGateway(
    { hostname: 'relay.test', ...config },
    async (g, dir) => {
      const hooks = relayHooks(g);
      hooks.delivered.tap('test', (e) => void events.delivered.push(e));
      hooks.deferred.tap('test', (e) => void events.deferred.push(e));
      hooks.bounced.tap('test', (e) => void events.bounced.push(e));
      await g.use(allowRelay);
      // The test receivers are MX hosts on 127.0.0.1: allowed here (only the relayer's own port is refused).
      await g.use(relay, { allowLoopbackMx: true, ...relayOptions, queueDir: relayOptions.queueDir || join(dir, 'queue') });
    },
    { dns: new DnsResolver({ servers: [dnsAddress] }), ...(process.env.RELAY_TEST_LOG ? { logger: createLogger({ level: 'debug' } as never) } : {}) },
  );
  return { gw, events, close: () => gw.close() };
}

/** Extra ESMTP parameters for `sendMail`: after MAIL FROM, and per recipient after RCPT TO. */
export interface SendParams {
  mail?: string;
  rcpt?: Record<string, string>;
}

export async function sendMail(port: number, from: string, to: string[], body: string, params: SendParams = {}): Promise<string[]> {
  const c = await SmtpTestClient.connect(port);
  const replies: string[] = [];
  const expect = async (line: string | undefined, code: number) => {
    const r = line === undefined ? await c.read() : await c.command(line);
    replies.push(`${r.code} ${r.lines?.join(' ') ?? ''}`);
    if (r.code !== code) throw new Error(`${line}: expected ${code}, got ${JSON.stringify(r)}`);
    return r;
  };
  await expect(undefined, 220);
  await expect('EHLO client.test', 250);
  await expect(`MAIL FROM:<${from}>${params.mail ? ` ${params.mail}` : ''}`, 250);
  for (const t of to) await expect(`RCPT TO:<${t}>${params.rcpt?.[t] ? ` ${params.rcpt[t]}` : ''}`, 250);
  await expect('DATA', 354);
  const text = body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  await expect(`${text.endsWith('\r\n') ? text.slice(0, -2) : text}\r\n.`, 250);
  await c.command('QUIT').catch(() => undefined);
  return replies;
}

export function message(subject: string, text = 'Hello there.'): string {
  return `From: Alice <alice@sender.test>\r\nTo: Bob <bob@dest.test>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\n${text}\r\n`;
}

export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeout = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** `dest.test` with its MX `mx1.dest.test` on loopback: the zone most tests relay to. */
export const DEST_ZONE: TestZone = {
  'dest.test': { MX: [{ exchange: 'mx1.dest.test', priority: 10 }] },
  'mx1.dest.test': { A: ['127.0.0.1'] },
};

/**
 * A test file's fixture: a DNS server with `zone` for the whole file, and a list of
 * cleanups (servers, gateways) run after each test, newest first.
 */
export function useRelayFixture(zone: TestZone): { readonly dns: TestDnsServer; readonly cleanup: Array<() => Promise<unknown>> } {
  let dns: TestDnsServer | undefined;
  const cleanup: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    dns = await startTestDnsServer(zone);
  });
  afterAll(async () => {
    await dns?.close();
  });
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });
  return {
    get dns() {
      if (!dns) throw new Error('the DNS server starts in beforeAll');
      return dns;
    },
    cleanup,
  };
}

/** Resolves once something accepts connections on 127.0.0.1:`port`. */
export async function listening(port: number, timeout = 20_000): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((ok) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), ok(true)));
        s.once('error', () => ok(false));
      }),
    timeout,
    `a server on port ${port}`,
  );
}
