import { createGateway, silentLogger, definePlugin, accept } from '@mailgate/core';
import { SmtpTestClient, startTestGateway, testSession } from '@mailgate/core/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import greylist, { clientNetwork } from '../src/index.js';
import { GreylistStore } from '../src/store.js';

// A storage stand-in: claims every recipient of example.test.
const inbox = definePlugin({
  name: 'inbox',
  setup({ tap, gateway }) {
    gateway.addLocalDomain('example.test');
    tap('claim', (_s, _tx, rcpt) => (rcpt.address.domain === 'example.test' ? accept() : undefined));
  },
});

afterEach(() => vi.useRealTimers());

describe('GreylistStore', () => {
  const timing = { delay: 300_000, retryWindow: 4 * 3_600_000, pass: 36 * 86_400_000, maxEntries: 100 };

  it('delays a new triplet, passes a retry after the delay, and remembers it', () => {
    const store = new GreylistStore(timing);
    expect(store.check('k', 0)).toBe(300_000);
    expect(store.check('k', 60_000)).toBe(240_000);
    expect(store.check('k', 300_000)).toBe(0);
    expect(store.check('k', 10 * 86_400_000)).toBe(0);
  });

  it('starts over when the retry comes after the retry window', () => {
    const store = new GreylistStore(timing);
    store.check('k', 0);
    expect(store.check('k', 5 * 3_600_000)).toBe(300_000);
  });

  it('forgets the oldest entries past maxEntries', () => {
    const store = new GreylistStore({ ...timing, maxEntries: 100 });
    for (let i = 0; i < 150; i++) store.check(`k${i}`, 0);
    expect(store.size).toBe(100);
  });
});

describe('clientNetwork', () => {
  it('groups IPv4 by /24 and IPv6 by /64', () => {
    expect(clientNetwork('192.0.2.77')).toBe('192.0.2');
    expect(clientNetwork('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2');
  });
});

describe('greylist plugin', () => {
  it('tempfails the first attempt with 451 4.7.1 and accepts the retry after the delay (on bytes)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const gw = createGateway({ hostname: 'mx.test' }, { logger: silentLogger });
    await gw.use(greylist, { delay: '1m' });
    await gw.use(inbox);
    const dialogue = 'EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.test>\r\n';
    const first = await (await testSession(gw, { remoteAddress: '192.0.2.10' })).send(dialogue);
    expect(first).toMatch(/^451 4\.7\.1 Greylisted, please try again in 60 seconds\r\n$/m);
    vi.setSystemTime(Date.now() + 61_000);
    // Another host of the same /24 retrying counts as the same client.
    const retry = await (await testSession(gw, { remoteAddress: '192.0.2.11' })).send(dialogue);
    expect(retry).toMatch(/^250 2\.1\.5 /m);
  });

  it('loads from YAML by path and works over a real socket', async () => {
    const gw = await startTestGateway({}, async (gateway) => {
      await gateway.use(greylist, {});
      await gateway.use(inbox);
    });
    try {
      const client = await SmtpTestClient.connect(gw.port);
      expect((await client.read()).code).toBe(220);
      await client.command('EHLO client.test');
      await client.command('MAIL FROM:<a@sender.test>');
      const reply = await client.command('RCPT TO:<b@example.test>');
      expect(reply.code).toBe(451);
      expect(reply.lines[0]).toMatch(/^4\.7\.1 Greylisted/);
      client.close();
    } finally {
      await gw.close();
    }
  });

  it('rejects bad options with the key path', async () => {
    const gw = createGateway({}, { logger: silentLogger });
    await expect(gw.use(greylist, { delay: 'soon' } as never)).rejects.toThrow(/delay/);
  });
});
