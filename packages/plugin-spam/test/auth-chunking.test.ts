/**
 * A signed message must verify however TCP cuts it: the gateway's decoder, the spool's
 * chunks, Message.stream() and the plugin's read of the message head all see the cut.
 * A guard for the intermittent `dkim=fail (bad signature)` reported under CPU load
 * (auth-e2e's first test, about 1 in 8 runs): chunk boundaries were one suspect; this
 * test splits the DATA payload at every line end (and the bytes beside it, between CR
 * and LF, before a leading dot) into two reads, and every message must pass.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger, type DnsResolver } from '@mailgate/core';
import { startTestGateway, type TestDnsServer } from '@mailgate/core/testing';
import { spamPlugin } from '../src/index.js';
import { mail, sign, startAuthDns } from './auth-helpers.js';
import { authAnyone, captureStorage, headerOf } from './helpers.js';

let dns: { server: TestDnsServer; resolver: DnsResolver };
beforeAll(async () => {
  dns = await startAuthDns();
});
afterAll(async () => {
  await dns.server.close();
});

it('a signed message split into two reads at any line boundary verifies: dkim=pass twice, dmarc=pass', async () => {
  const capture = captureStorage();
  const gw = await startTestGateway(
    { hostname: 'mx.auth.test' },
    async (g) => {
      await g.use(authAnyone());
      await g.use(spamPlugin, { rules: { defaults: false } });
      await g.use(capture.plugin);
    },
    { logger: silentLogger, dns: dns.resolver },
  );
  const raw = await sign(mail('Ann <ann@reject.example>', 'Hello there.\r\n.leading dot\r\nBye.\r\n'), { domain: 'reject.example', key: 'ed25519' }, { domain: 'reject.example', key: 'rsa' });
  const data = Buffer.from(raw.replace(/^\./gm, '..') + '.\r\n');
  const cuts = new Set<number>();
  data.forEach((byte, i) => {
    if (byte === 0x0a || byte === 0x0d) for (const p of [i - 1, i, i + 1, i + 2]) if (p > 0 && p < data.length) cuts.add(p);
  });
  const sock = connect(gw.port, '127.0.0.1');
  let buffered = '';
  let wake: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    buffered += d.toString('latin1');
    wake?.();
  });
  const reply = async (code: RegExp): Promise<string> => {
    while (!code.test(buffered)) await new Promise<void>((r) => (wake = r));
    const out = buffered;
    buffered = '';
    return out;
  };
  try {
    await reply(/^220 /m);
    sock.write('EHLO client.example\r\n');
    await reply(/^250 /m);
    const failed: string[] = [];
    for (const cut of cuts) {
      sock.write('MAIL FROM:<ann@reject.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n');
      await reply(/^354 /m);
      sock.write(data.subarray(0, cut));
      await new Promise((r) => setTimeout(r, 1));
      sock.write(data.subarray(cut));
      await reply(/^(250|4\d\d|5\d\d) /m);
      const ar = headerOf(capture.stored.pop()?.full ?? '', 'Authentication-Results') ?? '';
      if (!/dkim=pass header\.d=reject\.example header\.s=ed .*dkim=pass header\.d=reject\.example header\.s=rsa .*dmarc=pass/s.test(ar)) failed.push(`cut at ${cut}: ${ar}`);
    }
    expect(failed).toEqual([]);
    expect(cuts.size).toBeGreaterThan(50);
  } finally {
    sock.destroy();
    await gw.close();
  }
}, 60_000);
