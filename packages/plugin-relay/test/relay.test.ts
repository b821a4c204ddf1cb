import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateTestCertificate, type TestCertificate } from '@mailgate/core/testing';
import { closedPort, DEST_ZONE, message, reject, sendMail, startReceiver, startRelayer, tempfail, useRelayFixture, waitFor, type Receiver, type Relayer } from './helpers.js';

const fx = useRelayFixture({
  ...DEST_ZONE,
  'two.test': {
    MX: [
      { exchange: 'down.two.test', priority: 10 },
      { exchange: 'up.two.test', priority: 20 },
    ],
  },
  'down.two.test': { A: ['127.0.0.1'] },
  'up.two.test': { A: ['127.0.0.1'] },
  'implicit.test': { A: ['127.0.0.1'] },
  'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 5 }] },
  'mx.sender.test': { A: ['127.0.0.1'] },
  'admin.test': { MX: [{ exchange: 'mx.admin.test', priority: 5 }] },
  'mx.admin.test': { A: ['127.0.0.1'] },
  'nullmx.test': { MX: [{ exchange: '.', priority: 0 }] },
  'servfail.test': { servfail: true },
});
const { cleanup } = fx;
let cert: TestCertificate;
beforeAll(async () => {
  cert = await generateTestCertificate('mx1.dest.test');
});

async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
  const r = await startReceiver(options);
  cleanup.push(() => r.close());
  return r;
}
async function relayer(options: Parameters<typeof startRelayer>[0], config?: Record<string, unknown>): Promise<Relayer> {
  const r = await startRelayer({ retry: { schedule: ['200ms', '400ms'], maxAge: '20s', jitter: 0 }, ...options }, fx.dns.address, config);
  cleanup.push(() => r.close());
  return r;
}
const queueFiles = async (r: Relayer) => (await readdir(join(r.gw.dir, 'queue', 'msg'))).filter((n) => !n.startsWith('.'));

describe('relay: delivery via MX', () => {
  it('queues durably, delivers to the MX host in one transaction per domain, and empties the queue', async () => {
    const dest = await receiver();
    const r = await relayer({ queueDir: '', mxPort: { 'mx1.dest.test': dest.port } });
    const replies = await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test', 'carol@dest.test'], message('one'));
    expect(replies.at(-1)).toMatch(/^250/);
    await waitFor(() => dest.messages.length === 1 && r.events.delivered.length === 1, 10_000, 'delivery');
    const got = dest.messages[0]!;
    expect(got.from).toBe('alice@sender.test');
    expect(got.to.sort()).toEqual(['bob@dest.test', 'carol@dest.test']);
    expect(got.data).toContain('Subject: one');
    expect(got.data).toMatch(/^Received: from client\.test/m);
    expect(r.events.delivered[0]!.recipients.sort()).toEqual(['bob@dest.test', 'carol@dest.test']);
    await waitFor(async () => (await queueFiles(r)).length === 0, 5_000, 'empty queue');
  });

  it('is not an open relay: without relayAllowed nothing is claimed (554 5.7.1)', async () => {
    const { SmtpTestClient } = await import('@mailgate/core/testing');
    const { startTestGateway } = await import('@mailgate/core/testing');
    const relay = (await import('../src/index.js')).default;
    const gw = await startTestGateway({}, async (g, dir) => {
      await g.use(relay, { queueDir: join(dir, 'q') });
    });
    cleanup.push(() => gw.close());
    const c = await SmtpTestClient.connect(gw.port);
    await c.read();
    await c.command('EHLO x.test');
    await c.command('MAIL FROM:<a@sender.test>');
    const reply = await c.command('RCPT TO:<b@dest.test>');
    expect(reply.code).toBe(554);
  });

  it('falls back to the next MX when the first one is down', async () => {
    const up = await receiver();
    const down = await closedPort();
    const r = await relayer({ mxPort: { 'down.two.test': down, 'up.two.test': up.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@two.test'], message('fallback'));
    await waitFor(() => up.messages.length === 1, 10_000, 'delivery to the second MX');
    expect(r.events.deferred).toHaveLength(0);
  });

  it('uses the domain itself when it has no MX (implicit MX)', async () => {
    const dest = await receiver();
    const r = await relayer({ port: dest.port });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@implicit.test'], message('implicit'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
  });

  it('defers on 4xx, retries with back-off, then delivers', async () => {
    const dest = await receiver({ policy: (_rcpt, n) => (n < 3 ? tempfail('try later', { code: 451, enhanced: '4.7.1' }) : undefined) });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('deferred'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery after retries');
    expect(r.events.deferred.length).toBe(2);
    expect(r.events.deferred[0]!.error).toMatch(/^451 /);
    expect(dest.rcptLog).toEqual(['bob@dest.test:tempfail', 'bob@dest.test:tempfail', 'bob@dest.test:accept']);
  });

  it('defers while DNS fails temporarily (SERVFAIL)', async () => {
    const r = await relayer({});
    await sendMail(r.gw.port, 'alice@sender.test', ['x@servfail.test'], message('servfail'));
    await waitFor(() => r.events.deferred.length >= 1, 10_000, 'deferral');
    expect(r.events.deferred[0]!.error).toMatch(/MX lookup for servfail.test failed/);
    expect(r.events.bounced).toHaveLength(0);
  });
});

describe('relay: failures and bounces', () => {
  it('5xx → permanent failure for that recipient only, DSN to the sender with the original headers', async () => {
    const dest = await receiver({ policy: (rcpt) => (rcpt.startsWith('bad@') ? reject('no such user here', { code: 550, enhanced: '5.1.1' }) : undefined) });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['good@dest.test', 'bad@dest.test'], message('partial'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(dest.messages).toHaveLength(1);
    expect(dest.messages[0]!.to).toEqual(['good@dest.test']);
    const dsn = senderMx.messages[0]!;
    expect(dsn.from).toBe('');
    expect(dsn.to).toEqual(['alice@sender.test']);
    expect(dsn.data).toMatch(/Content-Type: multipart\/report; report-type=delivery-status;/);
    expect(dsn.data).toContain('Content-Type: message/delivery-status');
    expect(dsn.data).toContain('Reporting-MTA: dns; relay.test');
    expect(dsn.data).toContain('Final-Recipient: rfc822; bad@dest.test');
    expect(dsn.data).toContain('Action: failed');
    expect(dsn.data).toContain('Status: 5.1.1');
    expect(dsn.data).toMatch(/Diagnostic-Code: smtp; 550 5\.1\.1 no such user here/);
    expect(dsn.data).toContain('Remote-MTA: dns; mx1.dest.test');
    expect(dsn.data).toContain('Content-Type: text/rfc822-headers');
    expect(dsn.data).toContain('Subject: partial');
    expect(dsn.data).toContain('Message-ID: <partial@sender.test>');
    expect(dsn.data).not.toContain('Hello there.');
    expect(dsn.data).not.toContain('good@dest.test');
    // The bounce is queued (and may arrive) before the `bounced` event is emitted: wait for the event.
    await waitFor(() => r.events.bounced.length > 0, 10_000, 'the bounced event');
    expect(r.events.bounced).toHaveLength(1);
    expect(r.events.bounced[0]!.recipients.map((x) => x.address)).toEqual(['bad@dest.test']);
    await waitFor(async () => (await queueFiles(r)).length === 0, 5_000, 'empty queue');
  });

  it('null MX (RFC 7505) is a permanent failure (5.1.10) and bounces', async () => {
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@nullmx.test'], message('nullmx'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(senderMx.messages[0]!.data).toContain('Status: 5.1.10');
    expect(senderMx.messages[0]!.data).toContain('null MX');
  });

  it('a non-existent domain (NXDOMAIN) bounces', async () => {
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@nowhere.test'], message('nx'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(senderMx.messages[0]!.data).toContain('Status: 5.1.2');
  });

  it('expiry: still deferred after maxAge → bounce with 4.4.7', async () => {
    const dest = await receiver({ policy: () => tempfail('busy', { code: 451 }) });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port }, retry: { schedule: ['150ms'], maxAge: '700ms', jitter: 0 } });
    await sendMail(r.gw.port, 'alice@sender.test', ['slow@dest.test'], message('expire'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(senderMx.messages[0]!.data).toContain('Status: 4.4.7');
    expect(senderMx.messages[0]!.data).toMatch(/delivery time expired/);
    // (the event follows the bounce, which may already have arrived)
    await waitFor(() => r.events.bounced.length > 0, 10_000, 'the bounced event');
    expect(r.events.bounced[0]!.reason).toBe('expired');
  });

  it('a bounce is never sent to <>: a failed message from <> goes to the postmaster (double bounce)', async () => {
    const dest = await receiver({ policy: () => reject('gone', { code: 550, enhanced: '5.1.1' }) });
    const admin = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.admin.test': admin.port }, postmaster: 'postmaster@admin.test' });
    await sendMail(r.gw.port, '', ['x@dest.test'], message('dbl'));
    await waitFor(() => admin.messages.length === 1, 10_000, 'the double bounce');
    expect(admin.messages[0]!.from).toBe('');
    expect(admin.messages[0]!.to).toEqual(['postmaster@admin.test']);
    expect(admin.messages[0]!.data).toContain('Postmaster Copy');
    expect(admin.messages[0]!.data).toContain('Final-Recipient: rfc822; x@dest.test');
  });

  it('without a postmaster, an undeliverable bounce is held in the queue, not dropped', async () => {
    const dest = await receiver({ policy: () => reject('gone', { code: 550, enhanced: '5.1.1' }) });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    await sendMail(r.gw.port, '', ['x@dest.test'], message('held'));
    await waitFor(() => r.events.bounced.length === 1, 10_000, 'the failure');
    expect(r.events.bounced[0]!.bounceId).toBeUndefined();
    const files = await queueFiles(r);
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(1);
    const { readFile } = await import('node:fs/promises');
    const entry = JSON.parse(await readFile(join(r.gw.dir, 'queue', 'msg', files.find((f) => f.endsWith('.json'))!), 'utf8'));
    expect(entry.recipients[0].status).toBe('held');
  });
});

describe('relay: STARTTLS', () => {
  it('tls: required delivers over STARTTLS when offered', async () => {
    const dest = await receiver({ tls: cert });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port }, tls: 'required' });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('tls'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.tls).toBe(true);
  });

  it('opportunistic TLS is used when offered', async () => {
    const dest = await receiver({ tls: cert });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('opp'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.tls).toBe(true);
  });

  it('tls: required defers when the server does not offer STARTTLS', async () => {
    const dest = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port }, tls: 'required' });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('notls'));
    await waitFor(() => r.events.deferred.length >= 1, 10_000, 'deferral');
    expect(dest.messages).toHaveLength(0);
    expect(r.events.deferred[0]!.error).toMatch(/STARTTLS|TLS/i);
  });

  it('tlsVerify on a per-domain route rejects an untrusted certificate (deferred)', async () => {
    const dest = await receiver({ tls: cert });
    const r = await relayer({ routes: { 'dest.test': { host: `mx1.dest.test:${dest.port}`, tls: 'required', tlsVerify: true } } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('verify'));
    await waitFor(() => r.events.deferred.length >= 1, 10_000, 'deferral');
    expect(dest.messages).toHaveLength(0);
  });
});

describe('relay: restart', () => {
  it('a full queue survives a restart and is delivered by the next instance', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const qdir = await mkdtemp(join(tmpdir(), 'relay-q-'));
    cleanup.push(() => rm(qdir, { recursive: true, force: true }));
    const down = await closedPort();
    const first = await startRelayer({ queueDir: qdir, mxPort: { 'mx1.dest.test': down }, retry: { schedule: ['1h'], maxAge: '1d' } }, fx.dns.address);
    for (let i = 0; i < 20; i++) await sendMail(first.gw.port, 'alice@sender.test', [`u${i}@dest.test`], message(`restart${i}`));
    await waitFor(() => first.events.deferred.length === 20, 10_000, 'all deferred');
    await first.close();
    expect((await readdir(join(qdir, 'msg'))).filter((f) => f.endsWith('.json'))).toHaveLength(20);

    const dest = await receiver();
    const second = await relayer({ queueDir: qdir, mxPort: { 'mx1.dest.test': dest.port } });
    const { relayQueue } = await import('../src/index.js');
    await relayQueue(second.gw.gateway)!.ready;
    expect(relayQueue(second.gw.gateway)?.scheduled).toBe(20);
    relayQueue(second.gw.gateway)!.flush();
    await waitFor(() => dest.messages.length === 20, 15_000, 'all delivered');
    expect(new Set(dest.messages.map((m) => m.to[0])).size).toBe(20);
    await waitFor(async () => (await readdir(join(qdir, 'msg'))).length === 0, 5_000, 'empty queue');
  });
});

describe('relay: smarthost and connection reuse', () => {
  it('smarthost with required STARTTLS and AUTH, for all mail', async () => {
    const hub = await receiver({ tls: cert, auth: { user: 'relayuser', pass: 's3cret' } });
    const r = await relayer({ smarthost: { host: `127.0.0.1:${hub.port}`, tls: 'required', auth: { user: 'relayuser', pass: 's3cret' } } });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@nullmx.test', 'y@anywhere.example'], message('hub'));
    await waitFor(() => r.events.delivered.length === 1, 10_000, 'delivery to the smarthost');
    // two domains, one next hop: one transaction (Postfix groups by next hop too)
    expect(hub.messages).toHaveLength(1);
    expect(hub.messages[0]!.to).toEqual(['x@nullmx.test', 'y@anywhere.example']);
    expect(hub.messages[0]!.user).toBe('relayuser');
    expect(hub.messages[0]!.tls).toBe(true);
  });

  it('groups by next hop: the domains going to the smarthost share a transaction, a routed domain has its own', async () => {
    const hub = await receiver();
    const routed = await receiver();
    const r = await relayer({ smarthost: { host: `127.0.0.1:${hub.port}`, tls: 'none' }, routes: { 'routed.test': { host: `127.0.0.1:${routed.port}`, tls: 'none' } } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@one.example', 'c@routed.test', 'b@two.example'], message('grouped'));
    await waitFor(() => r.events.delivered.length === 2, 10_000, 'two deliveries');
    expect(hub.messages.map((m) => m.to)).toEqual([['a@one.example', 'b@two.example']]);
    expect(routed.messages.map((m) => m.to)).toEqual([['c@routed.test']]);
  });

  it('smarthost with wrong credentials defers (never bounces)', async () => {
    const hub = await receiver({ tls: cert, auth: { user: 'relayuser', pass: 's3cret' } });
    const r = await relayer({ smarthost: { host: `127.0.0.1:${hub.port}`, tls: 'required', auth: { user: 'relayuser', pass: 'wrong' } } });
    await sendMail(r.gw.port, 'alice@sender.test', ['y@anywhere.example'], message('badauth'));
    await waitFor(() => r.events.deferred.length >= 1, 10_000, 'deferral');
    expect(r.events.deferred[0]!.error).toMatch(/535|auth/i);
    expect(hub.messages).toHaveLength(0);
  });

  it('refuses to send credentials without TLS', async () => {
    const hub = await receiver({ auth: { user: 'u', pass: 'p' } });
    const r = await relayer({ smarthost: { host: `127.0.0.1:${hub.port}`, tls: 'none', auth: { user: 'u', pass: 'p' } } });
    await sendMail(r.gw.port, 'alice@sender.test', ['y@anywhere.example'], message('plainauth'));
    await waitFor(() => r.events.deferred.length >= 1, 10_000, 'deferral');
    expect(r.events.deferred[0]!.error).toMatch(/without TLS/);
  });

  it('reuses an idle connection to the same destination', async () => {
    const dest = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port }, idleTimeout: '5s' });
    for (let i = 0; i < 3; i++) {
      await sendMail(r.gw.port, 'alice@sender.test', [`u${i}@dest.test`], message(`reuse${i}`));
      await waitFor(() => dest.messages.length === i + 1, 10_000, 'delivery');
    }
    expect(new Set(dest.messages.map((m) => m.session)).size).toBe(1);
  });

  it('passes BODY=8BITMIME on', async () => {
    const dest = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    const { SmtpTestClient } = await import('@mailgate/core/testing');
    const c = await SmtpTestClient.connect(r.gw.port);
    await c.read();
    await c.command('EHLO client.test');
    expect((await c.command('MAIL FROM:<alice@sender.test> BODY=8BITMIME')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@dest.test>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('Subject: 8bit\r\n\r\nGrüße\r\n.')).code).toBe(250);
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.bodyType).toBe('8BITMIME');
  });
});

describe('relay: SIZE', () => {
  it('a message larger than the server\'s SIZE fails permanently (5.3.4) without being sent', async () => {
    const dest = await receiver({ config: { limits: { maxMessageSize: '1KB' } } });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['big@dest.test'], message('big', 'x'.repeat(3000)));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(senderMx.messages[0]!.data).toContain('Status: 5.3.4');
    expect(dest.messages).toHaveLength(0);
  });
});

describe('relay: concurrency', () => {
  it('never runs more than perDestination transactions to one domain at once', async () => {
    const dest = await receiver({ delayMs: 150 });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port }, perDestination: 2, concurrency: 10 });
    for (let i = 0; i < 8; i++) await sendMail(r.gw.port, 'alice@sender.test', [`p${i}@dest.test`], message(`par${i}`));
    await waitFor(() => dest.messages.length === 8, 15_000, 'all delivered');
    expect(dest.maxParallel).toBe(2);
  });

  it('groups recipients of one domain into one transaction, one transaction per domain', async () => {
    const dest = await receiver();
    const other = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port }, routes: { 'other.test': { host: `127.0.0.1:${other.port}` } } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test', 'b@other.test', 'c@dest.test', 'd@other.test'], message('split'));
    await waitFor(() => dest.messages.length === 1 && other.messages.length === 1, 10_000, 'both deliveries');
    expect(dest.messages[0]!.to.sort()).toEqual(['a@dest.test', 'c@dest.test']);
    expect(other.messages[0]!.to.sort()).toEqual(['b@other.test', 'd@other.test']);
  });
});

describe('relay: loops', () => {
  it('a message with more Received: headers than maxHops is bounced with 5.4.6, not sent', async () => {
    const dest = await receiver();
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port }, maxHops: 3 });
    const hops = Array.from({ length: 3 }, (_, i) => `Received: from hop${i}.test by x.test; Thu, 26 Nov 2026 10:00:0${i} +0000\r\n`).join('');
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], hops + message('loop'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(senderMx.messages[0]!.data).toContain('Status: 5.4.6');
    expect(dest.messages).toHaveLength(0);
  });
});

describe('relay: delayed-delivery warning', () => {
  it('sends one "Action: delayed" DSN after delayWarning, and keeps retrying', async () => {
    const dest = await receiver({ policy: () => tempfail('busy', { code: 451, enhanced: '4.3.2' }) });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port }, delayWarning: '300ms', retry: { schedule: ['150ms'], maxAge: '20s', jitter: 0 } });
    await sendMail(r.gw.port, 'alice@sender.test', ['slow@dest.test'], message('delay'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the warning');
    const dsn = senderMx.messages[0]!.data;
    expect(dsn).toContain('Subject: Delayed Mail');
    expect(dsn).toContain('Action: delayed');
    expect(dsn).toContain('Status: 4.3.2');
    expect(dsn).toMatch(/Will-Retry-Until: /);
    const attempts = r.events.deferred.length;
    await waitFor(() => r.events.deferred.length >= attempts + 3, 10_000, 'more attempts');
    expect(senderMx.messages).toHaveLength(1);
    expect(r.events.bounced).toHaveLength(0);
  });
});
