/**
 * An attacker at the envelope: DNS work it can start without bound, and list settings
 * that turn an allowlisting into a refusal. Real gateway on bytes, real DNS server on
 * loopback; the resolver is the core's, wrapped only to hold chosen answers back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, DnsResolver, silentLogger, type DnsRecordMap, type DnsRecordType } from '@mailgate/core';
import { testSession, type TestDnsServer } from '@mailgate/core/testing';
import { spamOptionsSchema, spamPlugin } from '../src/index.js';
import { captureStorage, startSpamDns, testOptions } from './helpers.js';

let dns: { server: TestDnsServer; resolver: DnsResolver };

beforeAll(async () => {
  dns = await startSpamDns({
    // SPF that makes one query per sender local-part: no cache helps the gateway.
    'held.example': { TXT: ['v=spf1 exists:%{l}.probe.example -all'] },
  });
});
afterAll(async () => {
  await dns.server.close();
});

/** The core's resolver, holding TXT answers for held.example until release(). */
class HoldingResolver extends DnsResolver {
  private readonly held: Array<() => Promise<unknown>> = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly asked: string[] = [];

  override resolve<T extends DnsRecordType>(name: string, type: T): Promise<DnsRecordMap[T][]> {
    this.asked.push(`${name.toLowerCase()} ${type}`);
    if (type !== 'TXT' || name.toLowerCase() !== 'held.example') return super.resolve(name, type);
    return new Promise((resolve, reject) => {
      this.held.push(() => {
        const answer = super.resolve(name, type);
        answer.then(resolve, reject);
        return answer.catch(() => undefined);
      });
      this.waiters = this.waiters.filter((w) => (this.held.length >= w.n ? (w.resolve(), false) : true));
    });
  }

  /** Until `n` queries are held. */
  heldAtLeast(n: number): Promise<void> {
    if (this.held.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  /** Answer every held query; resolves once the answers were handed out. */
  async release(): Promise<void> {
    await Promise.all(this.held.splice(0).map((answer) => answer()));
  }
}

describe('DNS work a client can start', () => {
  it('a transaction that ends (RSET) stops its SPF and RHSBL checks: MAIL/RSET loops do not pile up lookups', async () => {
    const resolver = new HoldingResolver({ servers: [dns.server.address], timeout: 300, retries: 1 });
    // long timeouts: only the end of each transaction may stop its lookups
    const gateway = createGateway({ hostname: 'mx.test', pluginTimeout: '90s' }, { logger: silentLogger, dns: resolver });
    await gateway.use(spamPlugin, testOptions({ dnsTimeout: '60s' }));
    const s = await testSession(gateway, { remoteAddress: '192.0.2.10' });
    const abandoned = 20;
    let script = 'EHLO client.example\r\n';
    for (let i = 0; i < abandoned; i++) script += `MAIL FROM:<gone${i}@held.example>\r\nRSET\r\n`;
    await s.send(script);
    // The transaction still open is the control: its check must go on.
    await s.send('MAIL FROM:<kept@held.example>\r\n');
    await resolver.heldAtLeast(abandoned + 1);
    await resolver.release();
    // Let every check that got its answer take its next step (no I/O in between).
    await new Promise((resolve) => setImmediate(resolve));
    const probes = resolver.asked.filter((q) => q.endsWith('.probe.example A'));
    expect(probes).toEqual(['kept.probe.example A']);
    await s.send('QUIT\r\n');
    await gateway.close();
  });
});

describe('DNS list entries that share a name', () => {
  /** One transaction from 192.0.2.66, which zen.example lists with 127.0.0.4. */
  async function rcptFrom66(options: Parameters<typeof testOptions>[0]) {
    const gateway = createGateway({ hostname: 'mx.test' }, { logger: silentLogger, dns: dns.resolver });
    const capture = captureStorage();
    await gateway.use(spamPlugin, testOptions(options));
    await gateway.use(capture.plugin);
    const s = await testSession(gateway, { remoteAddress: '192.0.2.66' });
    const reply = await s.send('EHLO client.example\r\nMAIL FROM:<ann@spf-pass.example>\r\nRCPT TO:<bob@example.test>\r\n');
    await s.send('QUIT\r\n');
    await gateway.close();
    return reply;
  }

  it('an allowlist and a blocklist on one zone (one list, two kinds of answers) need names: the default ones collided and the allowlisting scored as a listing', () => {
    // A combined list: 127.0.0.2 means "block", 127.0.0.4 "allow". With both entries named
    // after the zone, the allowlist hit took the blocklist's +15 and the client was refused.
    const input = {
      dnsbl: [{ zone: 'zen.example', weight: 15, returnCodes: ['127.0.0.2'] }],
      dnswl: [{ zone: 'zen.example', weight: 5, returnCodes: ['127.0.0.4'] }],
    };
    const result = spamOptionsSchema.safeParse(input);
    expect(result.success).toBe(false);
    const issue = result.error!.issues.find((i) => i.path.join('.') === 'dnswl.0.name');
    expect(issue?.message).toMatch(/dnsbl\[0\]/);
  });

  it('with their own names the allowlisting lowers the score and the client is let in', async () => {
    const reply = await rcptFrom66({
      dnsbl: [{ zone: 'zen.example', name: 'zen_block', weight: 15, returnCodes: ['127.0.0.2'] }],
      dnswl: [{ zone: 'zen.example', name: 'zen_allow', weight: 5, returnCodes: ['127.0.0.4'] }],
    });
    expect(reply).not.toMatch(/^5\d\d/m);
    expect(reply).toMatch(/\r\n250 [^\r\n]*\r\n250 [^\r\n]*\r\n$/); // MAIL and RCPT
  });

  it('two blocklist entries of one zone with different weights (SBL and PBL codes) need names too', () => {
    const result = spamOptionsSchema.safeParse({
      dnsbl: [
        { zone: 'zen.example', weight: 15, returnCodes: ['127.0.0.2'] },
        { zone: 'zen.example', weight: 1, returnCodes: ['127.0.0.4'] },
      ],
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toContain('dnsbl.1.name');
  });

  it('a domain list named alike in rhsbl and uribl is fine when the entries agree, refused when they do not', () => {
    const dbl = { zone: 'dbl.example', name: 'dbl', weight: 4 };
    expect(spamOptionsSchema.safeParse({ rhsbl: [{ ...dbl, check: ['sender', 'from'] }], uribl: [dbl] }).success).toBe(true);
    const result = spamOptionsSchema.safeParse({ rhsbl: [dbl], uribl: [{ ...dbl, weight: 9 }] });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toContain('uribl.0.name');
  });
});

describe('an allowlist that does not answer', () => {
  /** 192.0.2.66: zen.example lists it (+16); slow.example never answers, wl.example answers "not listed". */
  async function from66(allowlist: string) {
    const gateway = createGateway({ hostname: 'mx.test' }, { logger: silentLogger, dns: dns.resolver });
    const capture = captureStorage();
    await gateway.use(spamPlugin, testOptions({ dnsbl: [{ zone: 'zen.example', weight: 16 }], dnswl: [{ zone: allowlist, weight: 5 }], dnsTimeout: '5s' }));
    await gateway.use(capture.plugin);
    const s = await testSession(gateway, { remoteAddress: '192.0.2.66' });
    const rcpt = await s.send('EHLO client.example\r\nMAIL FROM:<ann@spf-pass.example>\r\nRCPT TO:<bob@example.test>\r\n');
    const data = await s.send('DATA\r\n');
    const final = data.startsWith('354') ? await s.send('Subject: hi\r\n\r\nhello\r\n.\r\n') : '';
    await s.send('QUIT\r\n');
    await gateway.close();
    return { rcpt, final, stored: capture.stored };
  }

  it('is no reason to refuse: a score that only its points could have brought under reject is a 451, not a 550', async () => {
    // The DNS trouble is ours: refusing for good a client the allowlist might have vouched for is the wrong verdict.
    const r = await from66('slow.example');
    expect(r.rcpt).not.toMatch(/^550/m);
    expect(r.final).toMatch(/^451 4\.7\.1 /);
    expect(r.stored).toHaveLength(0);
  });

  it('an allowlist that answers "not listed" leaves the refusal at RCPT as it was', async () => {
    const r = await from66('wl.example');
    expect(r.rcpt).toMatch(/^550 5\.7\.1 .*blocked using zen\.example/m);
  });
});
