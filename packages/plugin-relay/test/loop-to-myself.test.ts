/**
 * Finding 2 of the hostile-peer report: an MX whose address is the gateway's own made a
 * 51-hop mail loop (51 SMTP sessions and queue files for one message, and anyone can aim
 * a DSN at such a domain). Like Postfix, a hop found by MX lookup whose address is ours —
 * loopback, unspecified, a listener's address, an interface address under a wildcard
 * listener — is refused before connecting: "mail for X loops back to myself", 5.4.6.
 * Routes and the smarthost are configured by the operator and are not checked.
 */
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { freePort } from '@mailgate/core/testing';
import { ownAddressCheck } from '../src/own-address.js';
import { message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor, type Relayer } from './helpers.js';

const fx = useRelayFixture({
  'loop.test': { MX: [{ exchange: 'self.loop.test', priority: 10 }] },
  'self.loop.test': { A: ['127.0.0.1'] },
  'zero.test': { MX: [{ exchange: 'zero.zero.test', priority: 10 }] },
  'zero.zero.test': { A: ['0.0.0.0'] },
  'v6.test': { MX: [{ exchange: 'mx.v6.test', priority: 10 }] },
  'mx.v6.test': { AAAA: ['::1'] },
  'routed.test': { MX: [{ exchange: 'nowhere.routed.test', priority: 10 }] },
  // we are the best MX; a backup MX would send the mail straight back to us
  'backup.test': { MX: [{ exchange: 'self.backup.test', priority: 10 }, { exchange: 'mx2.backup.test', priority: 20 }] },
  'self.backup.test': { A: ['127.0.0.1'] },
  'mx2.backup.test': { A: ['127.0.0.1'] },
  // a better MX than us takes it
  'better.test': { MX: [{ exchange: 'mx1.better.test', priority: 5 }, { exchange: 'self.better.test', priority: 10 }] },
  'mx1.better.test': { A: ['127.0.0.1'] },
  'self.better.test': { A: ['127.0.0.1'] },
  // we are the backup; the primary's name has no address now (a DNS failure, a typo fixed later)
  'primary.test': { MX: [{ exchange: 'gone.primary.test', priority: 5 }, { exchange: 'self.primary.test', priority: 10 }] },
  'self.primary.test': { A: ['127.0.0.1'] },
  // an MX named as the gateway (relay.test) at an address on none of its interfaces: behind NAT
  'named.test': { MX: [{ exchange: 'RELAY.TEST.', priority: 10 }] },
  'relay.test': { A: ['192.0.2.25'] },
});

async function relayer(options: Parameters<typeof startRelayer>[0], config?: Record<string, unknown>) {
  const r = await startRelayer({ retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 }, ...options }, fx.dns.address, config);
  fx.cleanup.push(() => r.close());
  return r;
}

/** The failure reported for `address` in a `bounced` event. */
function failureOf(r: Relayer, address: string) {
  return r.events.bounced.flatMap((e) => e.recipients).find((x) => x.address === address);
}

describe('relay: mail that would loop back to this host', () => {
  it.each([
    ['loop.test', '127.0.0.1'],
    ['zero.test', '0.0.0.0'],
    ['v6.test', '::1'],
  ])('an MX of %s on %s is refused with 5.4.6, nothing is sent (allowLoopbackMx off, the default)', async (domain, address) => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const r = await relayer({ allowLoopbackMx: false, port: dest.port });
    await sendMail(r.gw.port, 'alice@sender.test', [`x@${domain}`], message('loop'));
    // (the bounce to alice@sender.test fails too, sender.test does not exist: pick ours)
    const failure = await waitFor(() => failureOf(r, `x@${domain}`), 10_000, 'the failure');
    expect(failure.error).toMatch(new RegExp(`mail for ${domain.replace('.', '\\.')} loops back to myself \\(MX [^[]+\\[${address.replace(/\./g, '\\.')}\\] is this host\\)`));
    expect(r.events.delivered).toHaveLength(0);
    expect(r.events.deferred).toHaveLength(0);
    expect(dest.messages).toHaveLength(0);
  });

  it('with allowLoopbackMx, an MX at our own listening address and port is still refused: no 51-hop loop', async () => {
    const port = await freePort();
    const r = await relayer({ allowLoopbackMx: true, port }, { listen: [{ host: '127.0.0.1', port }] });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@loop.test'], message('self'));
    const failure = await waitFor(() => failureOf(r, 'x@loop.test'), 10_000, 'the failure');
    expect(failure.error).toMatch(/loops back to myself/);
    // The gateway never received its own message back (one entry would be the original, a loop adds more).
    expect(r.events.delivered).toHaveLength(0);
  });

  it('we are the best MX: our MX and every worse one are dropped (RFC 5321 §5.1), not a backup that sends it back', async () => {
    const backup = await startReceiver();
    fx.cleanup.push(() => backup.close());
    const port = await freePort();
    const r = await relayer({ allowLoopbackMx: true, port, mxPort: { 'mx2.backup.test': backup.port } }, { listen: [{ host: '127.0.0.1', port }] });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@backup.test'], message('best'));
    const failure = await waitFor(() => failureOf(r, 'x@backup.test'), 10_000, 'the failure');
    expect(failure.error).toMatch(/mail for backup\.test loops back to myself \(MX self\.backup\.test\[127\.0\.0\.1\] is this host\)/);
    expect(backup.messages).toHaveLength(0);
  });

  it('we are the backup and the primary cannot be looked up now: kept and retried (never bounced), as Postfix', async () => {
    const port = await freePort();
    const r = await relayer({ allowLoopbackMx: true, port }, { listen: [{ host: '127.0.0.1', port }] });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@primary.test'], message('primary gone'));
    const deferred = await waitFor(() => r.events.deferred.find((e) => e.recipients.includes('x@primary.test')), 10_000, 'the deferral');
    expect(deferred.error).toMatch(/^unable to find primary relay for primary\.test: /);
    expect(failureOf(r, 'x@primary.test')).toBeUndefined();
  });

  it('an MX named as this gateway is this gateway, whatever its address (NAT): 5.4.6, no connection', async () => {
    const r = await relayer({ allowLoopbackMx: false });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@named.test'], message('named'));
    const failure = await waitFor(() => failureOf(r, 'x@named.test'), 10_000, 'the failure');
    expect(failure.error).toBe('mail for named.test loops back to myself (MX relay.test is this host)');
    expect(r.events.deferred).toHaveLength(0);
  });

  it('a better MX than us gets the mail', async () => {
    const better = await startReceiver();
    fx.cleanup.push(() => better.close());
    const port = await freePort();
    const r = await relayer({ allowLoopbackMx: true, port, mxPort: { 'mx1.better.test': better.port } }, { listen: [{ host: '127.0.0.1', port }] });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@better.test'], message('better'));
    await waitFor(() => better.messages.length === 1, 10_000, 'delivery to the better MX');
  });

  it('with allowLoopbackMx, another port on loopback is a different server and gets the mail', async () => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const r = await relayer({ allowLoopbackMx: true, port: dest.port });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@loop.test'], message('other port'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
  });

  it('a configured route (or smarthost) on loopback is the operator’s choice: never checked', async () => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const r = await relayer({ allowLoopbackMx: false, routes: { 'routed.test': { host: `127.0.0.1:${dest.port}` } }, smarthost: { host: `[::1]:${dest.port}` } });
    await sendMail(r.gw.port, 'alice@sender.test', ['x@routed.test'], message('routed'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery through the route');
    expect(r.events.bounced).toHaveLength(0);
  });
});

describe('ownAddressCheck', () => {
  const none = () => [];
  it('loopback and unspecified addresses, in any spelling, are ours unless allowLoopbackMx', () => {
    const own = ownAddressCheck({ listening: none, allowLoopback: false, interfaces: none });
    for (const a of ['127.0.0.1', '127.1.2.3', '0.0.0.0', '::1', '0:0::1', '::', '::ffff:127.0.0.1']) expect(own(a, 25), a).toBe(true);
    for (const a of ['192.0.2.1', '2001:db8::1', '128.0.0.1']) expect(own(a, 25), a).toBe(false);
  });

  it('with allowLoopbackMx, a loopback address is ours only at a port we listen on', () => {
    const own = ownAddressCheck({ listening: () => [{ address: '127.0.0.1', port: 2525 }], allowLoopback: true, interfaces: none });
    expect(own('127.0.0.1', 2525)).toBe(true);
    expect(own('0.0.0.0', 2525)).toBe(true);
    expect(own('127.0.0.1', 2526)).toBe(false);
    expect(own('127.0.0.2', 2525)).toBe(false);
    const wild = ownAddressCheck({ listening: () => [{ address: '::', port: 25 }], allowLoopback: true, interfaces: none });
    expect(wild('127.0.0.9', 25)).toBe(true);
    expect(wild('::1', 25)).toBe(true);
  });

  it('a listener’s address is ours at any port (Postfix compares addresses only)', () => {
    const own = ownAddressCheck({ listening: () => [{ address: '192.0.2.7', port: 2525 }], allowLoopback: true, interfaces: () => ['198.51.100.1'] });
    expect(own('192.0.2.7', 25)).toBe(true);
    expect(own('198.51.100.1', 25)).toBe(false);
  });

  it('under a wildcard listener every interface address is ours', () => {
    const own = ownAddressCheck({ listening: () => [{ address: '0.0.0.0', port: 25 }], allowLoopback: true, interfaces: () => ['198.51.100.1', 'fe80::1%eth0', '2001:db8::5'] });
    expect(own('198.51.100.1', 25)).toBe(true);
    expect(own('2001:db8::5', 587)).toBe(true);
    expect(own('fe80::1', 25)).toBe(true);
    expect(own('198.51.100.2', 25)).toBe(false);
  });

  it('reads the real interfaces by default', () => {
    const real = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && !i.internal)
      .map((i) => i!.address);
    const own = ownAddressCheck({ listening: () => [{ address: '::', port: 25 }], allowLoopback: true });
    for (const a of real) expect(own(a, 25), a).toBe(true);
    expect(own('192.0.2.254', 25)).toBe(real.includes('192.0.2.254'));
  });
});
