/**
 * Finding 1 of the hostile-peer report: a domain whose MX hosts never answer must not hold
 * a delivery slot for (MX hosts × addresses × connectTimeout) per attempt. At most
 * `mxAddressLimit` addresses are tried (Postfix: smtp_mx_address_limit), the MX hosts'
 * addresses are looked up only until that many are known, and only the best 10 MX
 * records are looked at.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { TestZone } from '@mailgate/core/testing';
import { message, sendMail, startRelayer, useRelayFixture, waitFor, type Relayer } from './helpers.js';

/** tarpit.test: 12 MX hosts (preference = index), each with 3 loopback addresses 127.0.<host>.<1-3>. */
const HOSTS = 12;
const zone: TestZone = { 'tarpit.test': { MX: Array.from({ length: HOSTS }, (_, i) => ({ exchange: `mx${i + 1}.tarpit.test`, priority: i + 1 })) } };
for (let i = 1; i <= HOSTS; i++) zone[`mx${i}.tarpit.test`] = { A: [1, 2, 3].map((a) => `127.0.${i}.${a}`) };

const fx = useRelayFixture(zone);

/** Silent "MX" servers: accept TCP on each address and never send a greeting; record who was reached, in order. */
async function tarpits(port: number): Promise<{ reached: string[]; close(): Promise<void> }> {
  const reached: string[] = [];
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  for (let i = 1; i <= HOSTS; i++) {
    for (const a of [1, 2, 3]) {
      const address = `127.0.${i}.${a}`;
      const server = createServer((socket) => {
        reached.push(address);
        sockets.add(socket);
        socket.on('error', () => undefined);
      });
      server.listen(port, address);
      await once(server, 'listening');
      servers.push(server);
    }
  }
  return {
    reached,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

/** A port free on 127.0.1.1 (all tarpits use the same one). */
async function freeTarpitPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.1.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function attempt(mxAddressLimit: number | undefined): Promise<{ reached: string[]; r: Relayer; lookups: string[] }> {
  const port = await freeTarpitPort();
  const pits = await tarpits(port);
  fx.cleanup.push(() => pits.close());
  const before = fx.dns.queries.length;
  const r = await startRelayer(
    { port, connectTimeout: '150ms', retry: { schedule: ['1h'], maxAge: '5d', jitter: 0 }, ...(mxAddressLimit ? { mxAddressLimit } : {}) },
    fx.dns.address,
  );
  fx.cleanup.push(() => r.close());
  await sendMail(r.gw.port, 'alice@sender.test', ['victim@tarpit.test'], message('tarpit'));
  await waitFor(() => r.events.deferred.length === 1, 15_000, 'the first attempt to be deferred');
  const lookups = fx.dns.queries
    .slice(before)
    .filter((q) => q.name.endsWith('.tarpit.test') && q.type !== 'MX')
    .map((q) => q.name);
  return { reached: [...pits.reached], r, lookups };
}

describe('relay: MX fan-out is capped', () => {
  it('tries at most 5 addresses per attempt by default, in MX order, and looks up only the hosts it needs', async () => {
    const { reached, r, lookups } = await attempt(undefined);
    // mx1 and mx2's three addresses each, in preference order: 5 of them, then the attempt is over.
    expect(reached).toHaveLength(5);
    expect(reached.slice(0, 3).sort()).toEqual(['127.0.1.1', '127.0.1.2', '127.0.1.3']);
    for (const a of reached.slice(3)) expect(a).toMatch(/^127\.0\.2\./);
    // Addresses of mx3 … mx12 were never looked up (10 lookups for 5 addresses would be the old way's 24).
    expect(new Set(lookups)).toEqual(new Set(['mx1.tarpit.test', 'mx2.tarpit.test']));
    expect(r.events.deferred[0]!.recipients).toEqual(['victim@tarpit.test']);
  });

  it('mxAddressLimit sets the cap', async () => {
    const { reached } = await attempt(2);
    expect(reached).toHaveLength(2);
    for (const a of reached) expect(a).toMatch(/^127\.0\.1\./);
  });

  it('only the 10 best MX records are looked at, however high the limit', async () => {
    const { reached, lookups } = await attempt(100);
    expect(reached).toHaveLength(30);
    expect(reached.filter((a) => /^127\.0\.1[12]\./.test(a))).toEqual([]);
    expect(lookups.filter((n) => /^mx1[12]\./.test(n))).toEqual([]);
  });

  it('mxAddressLimit is validated', async () => {
    const { relayOptionsSchema } = await import('../src/index.js');
    expect(relayOptionsSchema.parse({}).mxAddressLimit).toBe(5);
    expect(() => relayOptionsSchema.parse({ mxAddressLimit: 0 })).toThrow();
    expect(() => relayOptionsSchema.parse({ mxAddressLimit: 2.5 })).toThrow();
  });
});
