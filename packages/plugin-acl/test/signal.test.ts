/**
 * The tap signal in the ACL: a tap waiting for the client's reverse DNS stops waiting
 * when its client is gone, so `disconnect` gives the connection slot back at once
 * instead of after the lookup; the lookup itself still serves the rest of a session.
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsResolver, reverseName } from '@mailgate/core';
import { startTestDnsServer, type TestDnsServer } from '@mailgate/core/testing';
import { MemoryCounterStore } from '../src/index.js';
import { Client, startAcl } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(test: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('reverse DNS and the tap signal', () => {
  let dns: TestDnsServer;
  let resolver: DnsResolver;

  beforeAll(async () => {
    dns = await startTestDnsServer({
      [reverseName('127.0.0.7')]: { PTR: ['slow.example.test'], delayMs: 3_000 },
      'slow.example.test': { A: ['127.0.0.7'] },
      [reverseName('127.0.0.8')]: { PTR: ['quick.example.test'], delayMs: 300 },
      'quick.example.test': { A: ['127.0.0.8'] },
    });
    resolver = new DnsResolver({ servers: [dns.address], timeout: 5_000, retries: 1 });
  });
  afterAll(async () => {
    await dns.close();
  });

  it('a client that resets the connection during its reverse DNS lookup gets its slot back at once', async () => {
    const store = new MemoryCounterStore();
    const gw = await startAcl(
      { counterStore: store, limits: { connectionsPerIp: 1 }, rules: [{ rdns: '.example.test', action: 'reject', message: 'no' }] },
      {},
      { dns: resolver },
    );
    try {
      const socket = net.connect({ port: gw.port, host: '127.0.0.1', localAddress: '127.0.0.7' });
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      await until(() => store.held('acl:conn:127.0.0.7') === 1, 'the slot taken', 2_000);
      await sleep(100); // the connect tap now waits for the PTR answer (3 s away)
      const left = Date.now();
      socket.resetAndDestroy();
      await until(() => store.held('acl:conn:127.0.0.7') === 0, 'the slot given back', 2_500);
      expect(Date.now() - left).toBeLessThan(1_500);
    } finally {
      await gw.close();
    }
  });

  it('a helo tap that times out during the lookup stops waiting, but the lookup goes on for the next command', async () => {
    const gw = await startAcl(
      { rules: [{ helo: 'check.test', rdns: '.example.test', action: 'reject', message: 'rdns matched' }] },
      { pluginTimeout: '100ms' },
      { dns: resolver },
    );
    try {
      const before = dns.queries.length;
      const { client } = await Client.open(gw.port, { localAddress: '127.0.0.8' });
      expect((await client.command('EHLO check.test')).code).toBe(450); // the PTR answer is 300 ms away
      await sleep(400);
      expect((await client.command('EHLO check.test')).text).toBe('550 5.7.1 rdns matched');
      client.close();
      expect(dns.queries.slice(before).filter((q) => q.type === 'PTR')).toHaveLength(1);
    } finally {
      await gw.close();
    }
  });
});
