import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestSession } from '@mailgate/core/testing';
import { hashPassword, MemoryCounterStore, type CounterStore } from '../src/index.js';
import { Client, sendMessage, startAcl, tryRecipients } from './helpers.js';

describe('limits over loopback', () => {
  it('concurrent connections per IP: 421 4.7.0 and close; the slot comes back on disconnect', async () => {
    const store = new MemoryCounterStore();
    const gw = await startAcl({ limits: { connectionsPerIp: 2 }, counterStore: store });
    try {
      const a = await Client.open(gw.port);
      const b = await Client.open(gw.port);
      expect([a.greeting.code, b.greeting.code]).toEqual([220, 220]);
      const c = await Client.open(gw.port);
      expect(c.greeting.text).toBe('421 4.7.0 Too many concurrent connections from your address, try again later');
      expect(await c.client.waitClosed()).toBe(true);
      // Another address has its own slots.
      const other = await Client.open(gw.port, { localAddress: '127.0.0.2' });
      expect(other.greeting.code).toBe(220);
      other.client.close();
      expect((await a.client.command('QUIT')).code).toBe(221);
      await a.client.waitClosed();
      // The refused connection must not have leaked a slot either.
      for (let i = 0; i < 50 && store.held('acl:conn:127.0.0.1') !== 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(store.held('acl:conn:127.0.0.1')).toBe(1);
      const d = await Client.open(gw.port);
      expect(d.greeting.code).toBe(220);
      b.client.close();
      d.client.close();
    } finally {
      await gw.close();
    }
  });

  it('IPv6 clients are counted per /64 (limits.ipv6PrefixLength), IPv4-mapped ones as IPv4', async () => {
    const store = new MemoryCounterStore();
    const gw = await startAcl({ limits: { connectionsPerIp: 1, connectionRate: { max: 2, window: '1h' } }, counterStore: store });
    const greet = async (remoteAddress: string) => {
      const s = new TestSession(gw.gateway, { remoteAddress });
      return { s, code: (await s.start()).slice(0, 3) };
    };
    try {
      const first = await greet('2001:db8:1:2::1');
      expect(first.code).toBe('220');
      expect(store.held('acl:conn:2001:db8:1:2:0:0:0:0/64')).toBe(1);
      // another address of the same /64: the same client
      expect((await greet('2001:db8:1:2:ffff:ffff:ffff:fffe')).code).toBe('421');
      // the next /64 is another client
      const other = await greet('2001:db8:1:3::1');
      expect(other.code).toBe('220');
      await other.s.end();
      // the rate counts the /64 too: two connections so far, the third is over
      await first.s.end();
      expect((await greet('2001:db8:1:2::7')).code).toBe('421');
      // ::ffff:192.0.2.1 is 192.0.2.1
      const v4 = await greet('::ffff:192.0.2.1');
      expect(v4.code).toBe('220');
      expect(store.held('acl:conn:192.0.2.1')).toBe(1);
      await v4.s.end();
    } finally {
      await gw.close();
    }
  });

  it.each([
    ['limits.ipv6PrefixLength: 128 counts every IPv6 address on its own', { connectionsPerIp: 1, ipv6PrefixLength: 128 }, {}],
    ["limits.ipv6PrefixLength defaults to the core's: the ACL counts the clients the core counts", { connectionsPerIp: 1 }, { limits: { ipv6PrefixLength: 128 } }],
  ] as const)('%s', async (_what, limits, core) => {
    const gw = await startAcl({ limits }, core);
    try {
      const a = new TestSession(gw.gateway, { remoteAddress: '2001:db8::1' });
      const b = new TestSession(gw.gateway, { remoteAddress: '2001:db8::2' });
      expect((await a.start()).slice(0, 3)).toBe('220');
      expect((await b.start()).slice(0, 3)).toBe('220');
      await a.end();
      await b.end();
    } finally {
      await gw.close();
    }
  });

  it('connection rate per IP: 421 4.7.0 past the limit in the window', async () => {
    const gw = await startAcl({ limits: { connectionRate: { max: 3, window: '1h' } } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const { client, greeting } = await Client.open(gw.port);
        codes.push(greeting.code);
        client.close();
      }
      expect(codes).toEqual([220, 220, 220, 421, 421]);
      expect((await Client.open(gw.port, { localAddress: '127.0.0.2' })).greeting.code).toBe(220);
    } finally {
      await gw.close();
    }
  });

  it('exempt networks are not limited', async () => {
    const gw = await startAcl({ limits: { connectionRate: { max: 1, window: '1h' }, exempt: ['127.0.0.0/24'] } });
    try {
      for (let i = 0; i < 3; i++) {
        const { client, greeting } = await Client.open(gw.port);
        expect(greeting.code).toBe(220);
        client.close();
      }
    } finally {
      await gw.close();
    }
  });

  it('messages per client IP per window: 450 4.7.1, whatever senders the client uses', async () => {
    const gw = await startAcl({ localDomains: ['local.test'], limits: { messageRate: { max: 2, window: '1h' } } });
    try {
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      expect((await sendMessage(client, 'busy@remote.test', ['u@local.test'])).code).toBe(250);
      expect((await sendMessage(client, 'BUSY@remote.test', ['u@local.test'])).code).toBe(250);
      expect((await sendMessage(client, 'busy@remote.test', ['u@local.test'])).text).toBe('450 4.7.1 Too many messages, slow down and try again later');
      // Another sender from the same client is the same client: changing MAIL FROM does not reset the count.
      expect((await sendMessage(client, 'calm@remote.test', ['u@local.test'])).text).toBe('450 4.7.1 Too many messages, slow down and try again later');
      expect((await sendMessage(client, '', ['u@local.test'])).code).toBe(450);
      client.close();
      // Another connection from the same address too.
      const again = await Client.open(gw.port);
      await again.client.command('EHLO client.test');
      expect((await sendMessage(again.client, 'fresh@remote.test', ['u@local.test'])).code).toBe(450);
      again.client.close();
    } finally {
      await gw.close();
    }
  });

  it('a forged sender from another IP does not burn the real sender\'s allowance (messages and recipients)', async () => {
    const gw = await startAcl({
      localDomains: ['local.test'],
      limits: { messageRate: { max: 5, window: '1h' }, recipientRate: { max: 5, window: '1h' } },
    });
    try {
      // Both rates are on (one recipient a message): under a sender-keyed count either would refuse the victim.
      // The forger: 5 messages as victim@example.org from 127.0.0.2 use up 127.0.0.2's allowance...
      const { client: forger } = await Client.open(gw.port, { localAddress: '127.0.0.2' });
      await forger.command('EHLO forger.test');
      for (let i = 0; i < 5; i++) expect((await sendMessage(forger, 'victim@example.org', ['u@local.test'])).code).toBe(250);
      expect((await sendMessage(forger, 'victim@example.org', ['u@local.test'])).text).toBe('450 4.7.1 Too many messages, slow down and try again later');
      forger.close();
      // ...and only 127.0.0.2's: the real victim@example.org from 127.0.0.1 still sends.
      const { client: victim } = await Client.open(gw.port);
      await victim.command('EHLO victim.test');
      expect((await sendMessage(victim, 'victim@example.org', ['u@local.test'])).code).toBe(250);
      victim.close();
    } finally {
      await gw.close();
    }
  });

  it('message rate: IPv6 clients are counted per /64 (limits.ipv6PrefixLength)', async () => {
    const gw = await startAcl({ localDomains: ['local.test'], limits: { messageRate: { max: 1, window: '1h' } } });
    const mail = async (remoteAddress: string, from: string) => {
      const s = new TestSession(gw.gateway, { remoteAddress });
      await s.start();
      await s.send('EHLO c.test\r\n');
      const reply = await s.send(`MAIL FROM:<${from}>\r\n`);
      await s.end();
      return reply.slice(0, 3);
    };
    try {
      expect(await mail('2001:db8:1:2::1', 'a@remote.test')).toBe('250');
      // another address of the same /64, another sender: the same client
      expect(await mail('2001:db8:1:2::99', 'b@remote.test')).toBe('450');
      // the next /64 is another client, even with the first sender
      expect(await mail('2001:db8:1:3::1', 'a@remote.test')).toBe('250');
    } finally {
      await gw.close();
    }
  });

  describe('authenticated clients are counted per user', () => {
    let dir: string;
    let usersFile: string;
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'acl-limits-'));
      usersFile = join(dir, 'users');
      const hash = await hashPassword('pw', { ln: 10 });
      await writeFile(usersFile, `alice:${hash}:*@*\nbob:${hash}:*@*\n`);
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function login(port: number, user: string | undefined, localAddress?: string): Promise<Client> {
      const { client } = await Client.open(port, localAddress ? { localAddress } : {});
      await client.command('EHLO client.test');
      if (user !== undefined) expect((await client.command(`AUTH PLAIN ${b64(`\0${user}\0pw`)}`)).code).toBe(235);
      return client;
    }

    it('messages: a user is limited from any address and sender; other users and the IP itself are not', async () => {
      const gw = await startAcl(
        { localDomains: ['local.test'], auth: { usersFile }, limits: { messageRate: { max: 2, window: '1h' } } },
        { smtp: { authWithoutTls: true } },
      );
      try {
        const alice = await login(gw.port, 'alice');
        expect((await sendMessage(alice, 'a1@remote.test', ['u@local.test'])).code).toBe(250);
        expect((await sendMessage(alice, 'a2@remote.test', ['u@local.test'])).code).toBe(250);
        expect((await sendMessage(alice, 'a3@remote.test', ['u@local.test'])).text).toBe('450 4.7.1 Too many messages, slow down and try again later');
        alice.close();
        // alice from another address (user names ignore ASCII case): still alice
        const alice2 = await login(gw.port, 'ALICE', '127.0.0.2');
        expect((await sendMessage(alice2, 'a1@remote.test', ['u@local.test'])).code).toBe(450);
        alice2.close();
        // bob from alice's address has his own count, and so has the address unauthenticated
        const bob = await login(gw.port, 'bob');
        expect((await sendMessage(bob, 'a1@remote.test', ['u@local.test'])).code).toBe(250);
        bob.close();
        const anonymous = await login(gw.port, undefined);
        expect((await sendMessage(anonymous, 'a1@remote.test', ['u@local.test'])).code).toBe(250);
        anonymous.close();
      } finally {
        await gw.close();
      }
    });

    it('recipients: counted per user too', async () => {
      const gw = await startAcl(
        { localDomains: ['local.test'], auth: { usersFile }, limits: { recipientRate: { max: 2, window: '1h' } } },
        { smtp: { authWithoutTls: true } },
      );
      try {
        const alice = await login(gw.port, 'alice');
        expect((await sendMessage(alice, 'a@remote.test', ['x@local.test', 'y@local.test', 'z@local.test'])).code).toBe(450);
        alice.close();
        const bob = await login(gw.port, 'bob');
        expect((await sendMessage(bob, 'a@remote.test', ['x@local.test', 'y@local.test'])).code).toBe(250);
        bob.close();
      } finally {
        await gw.close();
      }
    });
  });

  it('recipients per client IP per window: 450 4.7.1', async () => {
    const gw = await startAcl({ localDomains: ['local.test'], limits: { recipientRate: { max: 3, window: '1h' } } });
    try {
      const { client } = await Client.open(gw.port);
      const replies = await tryRecipients(client, 'many@remote.test', ['a@local.test', 'b@local.test', 'c@local.test', 'd@local.test']);
      expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 450]);
      expect(replies[3]!.text).toBe('450 4.7.1 Too many recipients, slow down and try again later');
      // A new transaction with another sender is the same client.
      expect((await client.command('RSET')).code).toBe(250);
      expect((await client.command('MAIL FROM:<other@remote.test>')).code).toBe(250);
      expect((await client.command('RCPT TO:<e@local.test>')).code).toBe(450);
      client.close();
      // A forger of many@remote.test from another address does not touch this count, nor the other way round.
      const other = await Client.open(gw.port, { localAddress: '127.0.0.2' });
      expect((await tryRecipients(other.client, 'many@remote.test', ['a@local.test'])).map((r) => r.code)).toEqual([250]);
      other.client.close();
    } finally {
      await gw.close();
    }
  });

  it('rateBy: sender counts relayFrom clients per envelope sender, and every other client still per IP', async () => {
    const store = new MemoryCounterStore();
    const gw = await startAcl({
      localDomains: ['local.test'],
      relayFrom: ['127.0.0.1'],
      counterStore: store,
      limits: { rateBy: 'sender', messageRate: { max: 1, window: '1h' } },
    });
    try {
      // the trusted relay client: one count per program's sender
      const { client: relay } = await Client.open(gw.port);
      await relay.command('EHLO localhost');
      expect((await sendMessage(relay, 'cron@host.test', ['u@local.test'])).code).toBe(250);
      expect((await sendMessage(relay, 'CRON@host.test', ['u@local.test'])).code).toBe(450);
      expect((await sendMessage(relay, 'app@host.test', ['u@local.test'])).code).toBe(250);
      expect(await store.get('acl:msg:from:cron@host.test')).toBe(2);
      // the null sender from the relay client counts per IP
      expect((await sendMessage(relay, '', ['u@local.test'])).code).toBe(250);
      expect(await store.get('acl:msg:client:127.0.0.1')).toBe(1);
      relay.close();
      // an outside client forging app@host.test counts against its own address, not app's
      const { client: outside } = await Client.open(gw.port, { localAddress: '127.0.0.2' });
      await outside.command('EHLO outside.test');
      expect((await sendMessage(outside, 'app@host.test', ['u@local.test'])).code).toBe(250);
      expect((await sendMessage(outside, 'other@host.test', ['u@local.test'])).code).toBe(450);
      expect(await store.get('acl:msg:from:app@host.test')).toBe(1);
      expect(await store.get('acl:msg:client:127.0.0.2')).toBe(2);
      outside.close();
    } finally {
      await gw.close();
    }
  });

  it('errors per session: 421 4.7.0 and close', async () => {
    const gw = await startAcl({ limits: { maxErrors: 3 } }, { limits: { maxErrors: 50 } });
    try {
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<a@x.test>')).code).toBe(250);
      for (const r of ['a@y.test', 'b@y.test', 'c@y.test']) expect((await client.command(`RCPT TO:<${r}>`)).code).toBe(554);
      expect((await client.command('RCPT TO:<d@y.test>')).text).toBe('421 4.7.0 Too many errors, closing connection');
      expect(await client.waitClosed()).toBe(true);
    } finally {
      await gw.close();
    }
  });

  it('a custom CounterStore is used for every counter', async () => {
    const calls: string[] = [];
    const inner = new MemoryCounterStore();
    const store: CounterStore = {
      increment: (key, windowMs) => {
        calls.push(`increment ${key} ${windowMs}`);
        return inner.increment(key, windowMs);
      },
      get: (key) => inner.get(key),
      acquire: (key, limit) => {
        calls.push(`acquire ${key} ${limit}`);
        return inner.acquire(key, limit);
      },
      release: (key) => {
        calls.push(`release ${key}`);
        return inner.release(key);
      },
    };
    const gw = await startAcl({ counterStore: store, limits: { connectionsPerIp: 5, connectionRate: { max: 10, window: 60 } } });
    try {
      const { client } = await Client.open(gw.port);
      await client.command('QUIT');
      await client.waitClosed();
      for (let i = 0; i < 50 && !calls.some((c) => c.startsWith('release')); i++) await new Promise((r) => setTimeout(r, 10));
      expect(calls).toEqual(['increment acl:connrate:127.0.0.1 60000', 'acquire acl:conn:127.0.0.1 5', 'release acl:conn:127.0.0.1']);
    } finally {
      await gw.close();
    }
  });
});
