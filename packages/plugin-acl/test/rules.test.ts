import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsResolver, reverseName } from '@mailgate/core';
import { generateTestCertificate, startTestDnsServer, type TestDnsServer } from '@mailgate/core/testing';
import { hashPassword, type AclOptionsInput } from '../src/index.js';
import { Client, startAcl, tryRecipients, type AclGateway } from './helpers.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'acl-rules-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RULES: AclOptionsInput['rules'] = [
  // connect: client IP and networks (IPv4, IPv4-mapped)
  { name: 'blocked networks', client: ['127.0.0.3', '192.0.2.0/24'], action: 'reject', message: 'Your network is blocked' },
  { client: '::ffff:127.0.0.4', action: 'tempfail', message: 'Mapped rule, come back later' },
  // helo: exact, subdomains, glob, regex
  { helo: 'bad.helo.test', action: 'reject', code: 550, enhanced: '5.7.1', message: 'Bad HELO' },
  { helo: '.dynamic.test', action: 'reject', message: 'Dynamic HELO' },
  { helo: '*.dsl.*', action: 'reject', message: 'DSL HELO' },
  { helo: '/^\\d+-\\d+-\\d+-\\d+\\./', action: 'reject', message: 'IP-like HELO' },
  // mail: sender patterns and the null sender
  { sender: 'spammer@spam.test', action: 'reject', message: 'Sender blocked' },
  { sender: ['@spamdomain.test', '.spamsub.test'], action: 'reject', message: 'Sender domain blocked' },
  { sender: 'bounce-*@*', helo: 'nobounce.test', action: 'reject', message: 'No VERP here' },
  { sender: '/^[0-9]{6,}@/', action: 'reject', message: 'Numeric sender' },
  { sender: '<>', helo: 'nobounce.test', action: 'reject', message: 'No bounces' },
  { user: 'restricted', action: 'reject', message: 'Account suspended' },
  { trusted: false, sender: '@ourcorp.test', action: 'reject', code: 553, message: 'Spoofed local sender' },
  // rcpt: first match wins, accept skips the rest
  { stage: 'rcpt', sender: 'vip@remote.test', action: 'accept' },
  { recipient: 'blocked@local.test', action: 'reject', code: 550, enhanced: '5.1.1', message: 'No such user here' },
  { recipient: 'slow@local.test', action: 'tempfail' },
  { recipient: 'vipblocked@local.test', action: 'reject', message: 'Only VIPs' },
  { recipient: '@partner.test', action: 'accept' },
  { recipient: 'tlsonly@local.test', tls: true, action: 'accept' },
  { recipient: 'tlsonly@local.test', action: 'reject', message: 'TLS required' },
  { recipient: 'authonly@local.test', authenticated: false, action: 'reject', message: 'Authenticate first' },
  { recipient: '@local.test', helo: 'hostile.test', action: 'reject', message: 'Go away' },
];

describe('rules over loopback', () => {
  let gw: AclGateway;

  beforeAll(async () => {
    const cert = await generateTestCertificate();
    const usersFile = join(dir, 'users');
    const h = await hashPassword('pw', { ln: 10 });
    await writeFile(usersFile, `restricted:${h}:*@*\nfine:${h}:*@*\n`);
    gw = await startAcl(
      { localDomains: ['local.test'], auth: { usersFile }, rules: RULES },
      { tls: { key: cert.keyFile, cert: cert.certFile }, smtp: { authWithoutTls: true }, limits: { maxErrors: 100 } },
    );
  });
  afterAll(async () => {
    await gw.close();
  });

  it('client IP: a listed address and network is refused at connect with the rule text', async () => {
    const blocked = await Client.open(gw.port, { localAddress: '127.0.0.3' });
    expect(blocked.greeting.text).toBe('554 5.7.1 Your network is blocked');
    expect(await blocked.client.waitClosed()).toBe(true);
    const fine = await Client.open(gw.port, { localAddress: '127.0.0.5' });
    expect(fine.greeting.code).toBe(220);
    fine.client.close();
  });

  it('client IP: an IPv4-mapped rule matches the IPv4 client; tempfail at connect is 421', async () => {
    const mapped = await Client.open(gw.port, { localAddress: '127.0.0.4' });
    expect(mapped.greeting.text).toMatch(/^421 4\.3\.2 Mapped rule, come back later/);
    expect(await mapped.client.waitClosed()).toBe(true);
  });

  it('HELO name: exact, subdomains, glob, regex', async () => {
    const { client } = await Client.open(gw.port);
    expect((await client.command('EHLO bad.helo.test')).text).toBe('550 5.7.1 Bad HELO');
    expect((await client.command('EHLO BAD.HELO.TEST.')).text).toBe('550 5.7.1 Bad HELO');
    expect((await client.command('HELO host.dynamic.test')).text).toBe('550 5.7.1 Dynamic HELO');
    expect((await client.command('EHLO dynamic.test')).code).toBe(250);
    expect((await client.command('EHLO a.dsl.isp.test')).text).toBe('550 5.7.1 DSL HELO');
    expect((await client.command('EHLO 10-1-2-3.isp.test')).text).toBe('550 5.7.1 IP-like HELO');
    expect((await client.command('EHLO mail.good.test')).code).toBe(250);
    client.close();
  });

  it('sender: exact, domain, subdomains, glob, regex, null sender', async () => {
    const { client } = await Client.open(gw.port);
    await client.command('EHLO client.test');
    const mail = async (from: string) => {
      const reply = await client.command(`MAIL FROM:<${from}>`);
      if (reply.code === 250) await client.command('RSET');
      return reply.text;
    };
    expect(await mail('spammer@spam.test')).toBe('550 5.7.1 Sender blocked');
    expect(await mail('SPAMMER@Spam.Test')).toBe('550 5.7.1 Sender blocked');
    expect(await mail('other@spam.test')).toMatch(/^250/);
    expect(await mail('x@spamdomain.test')).toBe('550 5.7.1 Sender domain blocked');
    expect(await mail('x@a.spamsub.test')).toBe('550 5.7.1 Sender domain blocked');
    expect(await mail('x@spamsub.test')).toMatch(/^250/);
    expect(await mail('1234567@x.test')).toBe('550 5.7.1 Numeric sender');
    expect(await mail('12345@x.test')).toMatch(/^250/);
    expect(await mail('')).toMatch(/^250/); // the null sender is accepted unless a rule says otherwise
    expect(await mail('bounce-1@x.test')).toMatch(/^250/);
    await client.command('EHLO nobounce.test');
    expect(await mail('')).toBe('550 5.7.1 No bounces');
    expect(await mail('bounce-1@x.test')).toBe('550 5.7.1 No VERP here');
    client.close();
  });

  it('trusted: false refuses a local sender from outside', async () => {
    const { client } = await Client.open(gw.port);
    await client.command('EHLO client.test');
    expect((await client.command('MAIL FROM:<ceo@ourcorp.test>')).text).toBe('553 5.7.1 Spoofed local sender');
    expect((await client.command(`AUTH PLAIN ${b64('\0fine\0pw')}`)).code).toBe(235);
    expect((await client.command('MAIL FROM:<ceo@ourcorp.test>')).code).toBe(250);
    client.close();
  });

  it('user: a rule on the authenticated user', async () => {
    const { client } = await Client.open(gw.port);
    await client.command('EHLO client.test');
    expect((await client.command(`AUTH PLAIN ${b64('\0RESTRICTED\0pw')}`)).code).toBe(235);
    expect((await client.command('MAIL FROM:<x@y.test>')).text).toBe('550 5.7.1 Account suspended');
    client.close();
  });

  it('recipient: reject with code and enhanced code, tempfail, and first match wins', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'a@remote.test', ['blocked@local.test', 'slow@local.test', 'vipblocked@local.test', 'ok@local.test']);
    expect(replies.map((r) => r.text)).toEqual([
      '550 5.1.1 No such user here',
      '450 4.7.1 Recipient temporarily rejected, try again later',
      '550 5.7.1 Only VIPs',
      '250 2.1.5 Recipient OK',
    ]);
    client.close();
  });

  it('accept at rcpt skips the remaining checks: the later reject rules do not apply', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'vip@remote.test', ['vipblocked@local.test', 'blocked@local.test']);
    // Accepted by the ACL, claimed by the (test) mailbox store; never relayed.
    expect(replies.map((r) => r.code)).toEqual([250, 250]);
    client.close();
    expect(gw.claims.claimed.slice(-2)).toEqual([
      { rcpt: 'vipblocked@local.test', relayAllowed: false },
      { rcpt: 'blocked@local.test', relayAllowed: false },
    ]);
  });

  it('accept at rcpt for a remote domain allows relaying it (that is what it means)', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'a@remote.test', ['x@partner.test', 'x@notpartner.test']);
    expect(replies.map((r) => r.code)).toEqual([250, 554]);
    client.close();
    expect(gw.claims.claimed.at(-1)).toEqual({ rcpt: 'x@partner.test', relayAllowed: true });
  });

  it('tls and authenticated conditions', async () => {
    const { client } = await Client.open(gw.port);
    const plain = await tryRecipients(client, 'a@remote.test', ['tlsonly@local.test', 'authonly@local.test']);
    expect(plain.map((r) => r.text)).toEqual(['550 5.7.1 TLS required', '550 5.7.1 Authenticate first']);
    await client.command('RSET');
    await client.startTls();
    const secure = await tryRecipients(client, 'a@remote.test', ['tlsonly@local.test']);
    expect(secure.map((r) => r.code)).toEqual([250]);
    await client.command('RSET');
    expect((await client.command(`AUTH PLAIN ${b64('\0fine\0pw')}`)).code).toBe(235);
    expect((await client.command('MAIL FROM:<a@remote.test>')).code).toBe(250);
    expect((await client.command('RCPT TO:<authonly@local.test>')).code).toBe(250);
    client.close();
  });

  it('postmaster of a local domain stays reachable despite rcpt reject rules', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'a@remote.test', ['user@local.test', 'postmaster@local.test', '<postmaster>'], 'hostile.test');
    expect(replies.map((r) => r.code)).toEqual([550, 250, 250]);
    client.close();
  });
});

describe('IPv6 on ::1', () => {
  it('rules match IPv6 clients and networks; IPv4 rules do not', async () => {
    const gw = await startAcl(
      {
        localDomains: ['local.test'],
        rules: [
          { client: '2001:db8::/32', action: 'reject', message: 'documentation net' },
          { client: '127.0.0.0/8', action: 'reject', message: 'v4 loopback' },
          { client: '::1', recipient: 'v6blocked@local.test', action: 'reject', message: 'No v6 for you' },
        ],
        relayFrom: ['::1/128'],
      },
      { listen: [{ host: '::1', port: 0 }] },
    );
    try {
      const { client, greeting } = await Client.open(gw.port, { host: '::1' });
      expect(greeting.code).toBe(220);
      const ehlo = await client.command('EHLO client.test');
      expect(ehlo.lines[0]).toContain('[::1]');
      const replies = await tryRecipients(client, 'a@remote.test', ['v6blocked@local.test', 'ok@local.test', 'relay@remote.test']);
      expect(replies.map((r) => r.text)).toEqual(['550 5.7.1 No v6 for you', '250 2.1.5 Recipient OK', '250 2.1.5 Recipient OK']);
      client.close();
      expect(gw.claims.claimed.at(-1)).toEqual({ rcpt: 'relay@remote.test', relayAllowed: true });
    } finally {
      await gw.close();
    }
  });

  it('an IPv6 client outside relayFrom is refused relaying', async () => {
    const gw = await startAcl({ relayFrom: ['127.0.0.1', '2001:db8::/32'] }, { listen: [{ host: '::1', port: 0 }] });
    try {
      const { client } = await Client.open(gw.port, { host: '::1' });
      const [r] = await tryRecipients(client, 'a@remote.test', ['x@remote.test']);
      expect(r!.text).toMatch(/^554 5\.7\.1/);
      client.close();
      const blocked = await startAcl({ rules: [{ client: '::1', action: 'reject' }] }, { listen: [{ host: '::1', port: 0 }] });
      const c = await Client.open(blocked.port, { host: '::1' });
      expect(c.greeting.text).toBe('554 5.7.1 Connection refused');
      c.client.close();
      await blocked.close();
    } finally {
      await gw.close();
    }
  });
});

describe('reverse DNS (forward-confirmed)', () => {
  let dns: TestDnsServer;
  let resolver: DnsResolver;
  let gw: AclGateway;
  let v6Port: number;

  const rules: AclOptionsInput['rules'] = [
    { helo: 'check-rdns.test', rdns: 'good.example.test', action: 'reject', message: 'rdns good' },
    { helo: 'check-rdns.test', rdns: '*.example.test', action: 'reject', message: 'rdns wildcard' },
    { helo: 'check-fcrdns.test', fcrdns: false, action: 'tempfail', message: 'no fcrdns' },
    { helo: 'check-v6.test', rdns: '.example.test', action: 'reject', message: 'rdns v6' },
  ];

  beforeAll(async () => {
    dns = await startTestDnsServer({
      [reverseName('127.0.0.1')]: { PTR: ['good.example.test'] },
      'good.example.test': { A: ['127.0.0.1'] },
      [reverseName('127.0.0.2')]: { PTR: ['liar.example.test'] },
      'liar.example.test': { A: ['192.0.2.1'] },
      [reverseName('127.0.0.3')]: { servfail: true },
      [reverseName('127.0.0.6')]: { PTR: ['fails.example.test', 'multi.example.test'] },
      'fails.example.test': { servfail: true },
      'multi.example.test': { A: ['192.0.2.9', '127.0.0.6'] },
      [reverseName('::1')]: { PTR: ['v6.example.test'] },
      'v6.example.test': { AAAA: ['0:0:0:0:0:0:0:1'], A: ['127.0.0.1'] },
    });
    resolver = new DnsResolver({ servers: [dns.address], timeout: 1_000, retries: 1 });
    gw = await startAcl({ rules }, { listen: [{ host: '127.0.0.1', port: 0 }, { host: '::1', port: 0 }] }, { dns: resolver });
    v6Port = gw.gateway.addresses[1]!.port;
  });
  afterAll(async () => {
    await gw.close();
    await dns.close();
  });

  const ehlo = async (name: string, options: { localAddress?: string; host?: string; port?: number } = {}) => {
    const { client } = await Client.open(options.port ?? gw.port, options);
    const reply = await client.command(`EHLO ${name}`);
    client.close();
    return reply.text.split('\r\n').at(-1)!;
  };

  it('matches a verified name', async () => {
    expect(await ehlo('check-rdns.test')).toBe('550 5.7.1 rdns good');
    expect(await ehlo('check-fcrdns.test')).toMatch(/^250 /);
  });

  it('does not match a PTR name that does not resolve back to the client', async () => {
    expect(await ehlo('check-rdns.test', { localAddress: '127.0.0.2' })).toMatch(/^250 /);
    expect(await ehlo('check-fcrdns.test', { localAddress: '127.0.0.2' })).toBe('450 4.7.1 no fcrdns');
  });

  it('no PTR at all: fcrdns false', async () => {
    expect(await ehlo('check-fcrdns.test', { localAddress: '127.0.0.4' })).toBe('450 4.7.1 no fcrdns');
  });

  it('one of several PTR names verified is enough, even if another lookup fails', async () => {
    expect(await ehlo('check-rdns.test', { localAddress: '127.0.0.6' })).toBe('550 5.7.1 rdns wildcard');
  });

  it('IPv6: PTR under ip6.arpa and AAAA', async () => {
    expect(await ehlo('check-v6.test', { host: '::1', port: v6Port })).toBe('550 5.7.1 rdns v6');
  });

  it('a temporary DNS failure: the rule does not match by default', async () => {
    expect(await ehlo('check-fcrdns.test', { localAddress: '127.0.0.3' })).toMatch(/^250 /);
    expect(await ehlo('check-rdns.test', { localAddress: '127.0.0.3' })).toMatch(/^250 /);
  });

  it('a temporary DNS failure with rdnsFailure: tempfail gives 4.7.25', async () => {
    const strict = await startAcl({ rules, rdnsFailure: 'tempfail' }, {}, { dns: resolver });
    try {
      const { client } = await Client.open(strict.port, { localAddress: '127.0.0.3' });
      expect((await client.command('EHLO check-fcrdns.test')).text).toMatch(/^450 4\.7\.25 Cannot verify your host name/);
      expect((await client.command('EHLO unrelated.test')).code).toBe(250); // only rules that need the name
      client.close();
    } finally {
      await strict.close();
    }
  });

  it('looks the client up once per session', async () => {
    resolver.clearCache();
    const before = dns.queries.length;
    const { client } = await Client.open(gw.port, { localAddress: '127.0.0.2' });
    await client.command('EHLO check-fcrdns.test');
    await client.command('EHLO check-fcrdns.test');
    await client.command('EHLO check-rdns.test');
    client.close();
    const asked = dns.queries.slice(before).map((q) => `${q.type} ${q.name}`);
    expect(asked.filter((q) => q.startsWith('PTR')).length).toBe(1);
  });
});

describe('rule lists from files', () => {
  it('a client block list file is reloaded when it changes', async () => {
    const file = join(dir, 'blocked-clients.txt');
    await writeFile(file, '# blocked\n192.0.2.0/24\n');
    const gw = await startAcl({ reloadInterval: 0, rules: [{ client: [{ file }], action: 'reject', message: 'Listed' }] });
    try {
      const first = await Client.open(gw.port, { localAddress: '127.0.0.7' });
      expect(first.greeting.code).toBe(220);
      first.client.close();
      await writeFile(file, '# blocked\n192.0.2.0/24\n127.0.0.7 # this one too\n');
      await utimes(file, new Date(), new Date(Date.now() + 5_000));
      const second = await Client.open(gw.port, { localAddress: '127.0.0.7' });
      expect(second.greeting.text).toBe('554 5.7.1 Listed');
      second.client.close();
    } finally {
      await gw.close();
    }
  });

  it('a local domains file: new domains become local on reload', async () => {
    const file = join(dir, 'domains.txt');
    await writeFile(file, 'one.test\n');
    const gw = await startAcl({ reloadInterval: 0, localDomains: ['fixed.test', { file }] });
    try {
      const c1 = (await Client.open(gw.port)).client;
      expect((await tryRecipients(c1, 'a@x.test', ['u@one.test', 'u@fixed.test', 'u@two.test'])).map((r) => r.code)).toEqual([250, 250, 554]);
      c1.close();
      await writeFile(file, 'one.test\ntwo.test\n');
      await utimes(file, new Date(), new Date(Date.now() + 5_000));
      const c2 = (await Client.open(gw.port)).client;
      expect((await tryRecipients(c2, 'a@x.test', ['u@two.test'])).map((r) => r.code)).toEqual([250]);
      c2.close();
    } finally {
      await gw.close();
    }
  });
});
