import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFromYaml, silentLogger } from '@mailgate/core';
import { generateTestCertificate, type TestCertificate } from '@mailgate/core/testing';
import { hashPassword, parseUsersFile, passwordHashScheme, verifyPassword } from '../src/index.js';
import { Client, sendMessage, startAcl, swaks, type AclGateway } from './helpers.js';

// Cheap hashes keep the suite fast (the default scrypt cost is tested in core).
const scryptHash = (pw: string) => hashPassword(pw, { ln: 10 });
const bcryptHash = (pw: string) => bcrypt.hash(pw, 4);

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

let dir: string;
let cert: TestCertificate;
let usersFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'acl-auth-'));
  cert = await generateTestCertificate('localhost');
  usersFile = join(dir, 'users.yaml');
  await writeFile(
    usersFile,
    [
      'users:',
      '  - name: alice',
      `    password: "${await scryptHash('alice-secret')}"`,
      '    addresses: [alice@local.test, "@alice.test"]',
      '  - name: bob@local.test',
      `    password: "${await bcryptHash('bob-secret')}"`,
      '  - name: carol',
      `    password: "${await bcryptHash('carol-secret')}"`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('password helpers', () => {
  it('verify scrypt and bcrypt ($2a$, $2b$, $2y$), nothing else', async () => {
    const s = await scryptHash('pw');
    const b = await bcryptHash('pw');
    expect(passwordHashScheme(s)).toBe('scrypt');
    expect(passwordHashScheme(b)).toBe('bcrypt');
    expect(await verifyPassword('pw', s)).toBe(true);
    expect(await verifyPassword('pw', b)).toBe(true);
    expect(await verifyPassword('pw', b.replace(/^\$2b\$/, '$2y$'))).toBe(true);
    expect(await verifyPassword('pw', b.replace(/^\$2b\$/, '$2a$'))).toBe(true);
    expect(await verifyPassword('px', b)).toBe(false);
    expect(await verifyPassword('pw', 'pw')).toBe(false);
  });
});

describe('users file', () => {
  it('reads YAML and htpasswd files; addresses default to the name when it is an address', async () => {
    const h = await scryptHash('x');
    const yaml = parseUsersFile(`users:\n  - { name: Dave, password: "${h}", addresses: dave@x.test }\n`, 'u.yaml');
    expect(yaml.users.get('dave')?.addresses).toEqual(['dave@x.test']);
    const ht = parseUsersFile(`# comment\nerin@x.test:${h}\nfrank:${h}:frank@x.test, @frank.test\n`, 'users.htpasswd');
    expect(ht.users.get('erin@x.test')?.addresses).toEqual(['erin@x.test']);
    expect(ht.users.get('frank')?.addresses).toEqual(['frank@x.test', '@frank.test']);
  });

  it('refuses plain-text passwords, naming the line and never echoing the password', () => {
    const text = 'users:\n  - name: alice\n    password: hunter2\n';
    expect(() => parseUsersFile(text, 'users.yaml')).toThrow(/^users\.yaml:3: user "alice": the password is not a scrypt or bcrypt hash; plain-text passwords are refused/);
    try {
      parseUsersFile(text, 'users.yaml');
    } catch (error) {
      expect(String(error)).not.toContain('hunter2');
    }
    expect(() => parseUsersFile('ok:$2y$05$Ws5.eBqZ.jXjXQ3X7J6xE.3UqK5R0l2mNwKQhUz2VvG6mXh5xk8hK\nbob:secret\n', 'users')).toThrow(/^users:2: user "bob": .*plain-text passwords are refused/);
    expect(() => parseUsersFile('users:\n  - name: n\n    password: 123456\n', 'u.yml')).toThrow(/u\.yml:3: .*plain-text/);
    expect(() => parseUsersFile('x:$apr1$abc$defghijklmnopqrstuvwx\n', 'users')).toThrow(/users:1: user "x": the password hash scheme Apache MD5 \(\$apr1\$\) is not supported/);
  });

  it('reports structure errors with lines', () => {
    expect(() => parseUsersFile('users:\n  - name: a\n    pasword: x\n', 'u.yaml')).toThrow(/u\.yaml:3: unknown key "pasword"/);
    expect(() => parseUsersFile('users:\n  - name: a\n', 'u.yaml')).toThrow(/u\.yaml:2: user "a" has no password/);
    expect(() => parseUsersFile('users: [\n', 'u.yaml')).toThrow(/u\.yaml:\d+: YAML syntax error/);
    expect(() => parseUsersFile('a:b:c:d\n', 'users')).toThrow(/users:1: expected "name:password-hash"/);
  });

  it('refuses duplicate users (names compare without case)', async () => {
    const h = await scryptHash('x');
    expect(() => parseUsersFile(`alice:${h}\nAlice:${h}\n`, 'users')).toThrow(/users:2: user "Alice" is already defined on line 1/);
  });

  it('a gateway with a plain-text users file does not start, and says where', async () => {
    const file = join(dir, 'plain.htpasswd');
    await writeFile(file, 'alice:hunter2\n');
    const yaml = `plugins:\n  - use: ${JSON.stringify(join(import.meta.dirname, '../src/index.ts'))}\n    with: { auth: { usersFile: ${JSON.stringify(file)} } }\n`;
    await expect(gatewayFromYaml(yaml, { logger: silentLogger })).rejects.toThrow(/auth\.usersFile: .*plain\.htpasswd:1: user "alice": .*plain-text passwords are refused/);
  });
});

describe('SMTP AUTH over STARTTLS', () => {
  let gw: AclGateway;

  beforeAll(async () => {
    gw = await startAcl(
      {
        localDomains: ['local.test'],
        auth: { usersFile },
        limits: { authFailures: { max: 100, window: 60 } },
      },
      { tls: { key: cert.keyFile, cert: cert.certFile } },
    );
  });
  afterAll(async () => {
    await gw.close();
  });

  it('offers AUTH only after STARTTLS', async () => {
    const { client } = await Client.open(gw.port);
    const before = await client.command('EHLO client.test');
    expect(before.lines).toContain('STARTTLS');
    expect(before.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
    await client.startTls();
    const after = await client.command('EHLO client.test');
    expect(after.lines).toContain('AUTH PLAIN LOGIN');
    client.close();
  });

  it('swaks: AUTH PLAIN (scrypt user) relays to any domain from its own address', async () => {
    const before = gw.claims.claimed.length;
    const r = await swaks([
      '--server', '127.0.0.1', '--port', String(gw.port), '--ehlo', 'client.test', '--tls',
      '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-secret',
      '--from', 'alice@local.test', '--to', 'someone@remote.test', '--suppress-data',
    ]);
    expect(r.output).toMatch(/235 2\.7\.0/);
    expect(r.code, r.output).toBe(0);
    expect(gw.claims.claimed.slice(before)).toEqual([{ rcpt: 'someone@remote.test', relayAllowed: true }]);
  });

  it('swaks: AUTH LOGIN (bcrypt user, name is an address) may send as itself', async () => {
    const r = await swaks([
      '--server', '127.0.0.1', '--port', String(gw.port), '--ehlo', 'client.test', '--tls',
      '--auth', 'LOGIN', '--auth-user', 'bob@local.test', '--auth-password', 'bob-secret',
      '--from', 'bob@local.test', '--to', 'x@remote.test', '--suppress-data',
    ]);
    expect(r.code, r.output).toBe(0);
  });

  it('swaks: a wrong password gets 535 5.7.8', async () => {
    const r = await swaks([
      '--server', '127.0.0.1', '--port', String(gw.port), '--ehlo', 'client.test', '--tls',
      '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'wrong',
      '--from', 'alice@local.test', '--to', 'x@remote.test', '--suppress-data',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/535 5\.7\.8/);
  });

  it('nodemailer: AUTH PLAIN and LOGIN with requireTLS deliver to a remote domain', async () => {
    for (const method of ['PLAIN', 'LOGIN']) {
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gw.port,
        secure: false,
        requireTLS: true,
        name: 'client.test',
        tls: { rejectUnauthorized: false },
        auth: { user: 'alice', pass: 'alice-secret', method },
      });
      try {
        const info = await transport.sendMail({ from: 'alice@alice.test', to: 'friend@remote.test', subject: 'hi', text: 'hello' });
        expect(info.response).toMatch(/^250 /);
        expect(info.accepted).toEqual(['friend@remote.test']);
      } finally {
        transport.close();
      }
    }
  });

  it('nodemailer: a sender that is not the user\'s gets 553 5.7.1', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.port,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice', pass: 'alice-secret' },
    });
    try {
      await expect(transport.sendMail({ from: 'ceo@local.test', to: 'x@remote.test', text: 'hi' })).rejects.toMatchObject({ responseCode: 553 });
    } finally {
      transport.close();
    }
  });

  it('sender binding: own addresses and patterns, the null sender, users without addresses', async () => {
    const { client } = await Client.open(gw.port);
    await client.command('EHLO client.test');
    await client.startTls();
    await client.command('EHLO client.test');
    expect((await client.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).code).toBe(235);
    expect((await client.command('MAIL FROM:<ALICE@Local.Test>')).code).toBe(250);
    await client.command('RSET');
    expect((await client.command('MAIL FROM:<anything@alice.test>')).code).toBe(250);
    await client.command('RSET');
    expect((await client.command('MAIL FROM:<>')).code).toBe(250);
    await client.command('RSET');
    const other = await client.command('MAIL FROM:<bob@local.test>');
    expect(other.text).toMatch(/^553 5\.7\.1 <bob@local\.test>: Sender address rejected: not owned by user alice/);
    client.close();

    // carol has no address (her name is not one): she cannot send with a sender.
    const c2 = (await Client.open(gw.port)).client;
    await c2.command('EHLO client.test');
    await c2.startTls();
    await c2.command('EHLO client.test');
    expect((await c2.command(`AUTH PLAIN ${b64('\0carol\0carol-secret')}`)).code).toBe(235);
    expect((await c2.command('MAIL FROM:<carol@local.test>')).code).toBe(553);
    c2.close();
  });

  it('AUTH PLAIN may not authorize as another user', async () => {
    const { client } = await Client.open(gw.port);
    await client.command('EHLO client.test');
    await client.startTls();
    await client.command('EHLO client.test');
    expect((await client.command(`AUTH PLAIN ${b64('bob@local.test\0alice\0alice-secret')}`)).code).toBe(535);
    expect((await client.command(`AUTH PLAIN ${b64('alice\0alice\0alice-secret')}`)).code).toBe(235);
    client.close();
  });
});

describe('users file reload', () => {
  it('picks up a changed users file, keeps the old one while the new one is broken', async () => {
    const file = join(dir, 'reload.htpasswd');
    await writeFile(file, `dan:${await scryptHash('one')}\n`);
    const gw = await startAcl({ auth: { usersFile: file }, reloadInterval: 0, limits: { authFailures: { max: 100, window: 60 }, authFailuresPerSession: 100 } }, {
      smtp: { authWithoutTls: true },
    });
    try {
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      const login = (pw: string) => client.command(`AUTH PLAIN ${b64(`\0dan\0${pw}`)}`);
      expect((await login('two')).code).toBe(535);
      await writeFile(file, `dan:${await scryptHash('two')}\n`);
      // Deterministic: the file's mtime moves whatever the clock's granularity.
      await utimes(file, new Date(), new Date(Date.now() + 5_000));
      expect((await login('two')).code).toBe(235);
      client.close();

      const c2 = (await Client.open(gw.port)).client;
      await c2.command('EHLO client.test');
      await writeFile(file, 'dan:plaintext\n');
      await utimes(file, new Date(), new Date(Date.now() + 10_000));
      // The broken file is refused; the previous content stays in force.
      expect((await c2.command(`AUTH PLAIN ${b64('\0dan\0two')}`)).code).toBe(235);
      c2.close();
    } finally {
      await gw.close();
    }
  });
});

describe('failed logins', () => {
  it('are limited per session (421) and per IP (454), without checking the password once locked', async () => {
    const gw = await startAcl(
      { auth: { usersFile }, limits: { authFailures: { max: 4, window: '1h' }, authFailuresPerSession: 3 } },
      { smtp: { authWithoutTls: true } },
    );
    try {
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      const bad = `AUTH PLAIN ${b64('\0alice\0nope')}`;
      expect((await client.command(bad)).text).toMatch(/^535 5\.7\.8/);
      expect((await client.command(bad)).code).toBe(535);
      expect((await client.command(bad)).text).toMatch(/^421 4\.7\.0 Too many failed authentication attempts/);
      expect(await client.waitClosed()).toBe(true);

      const c2 = (await Client.open(gw.port)).client;
      await c2.command('EHLO client.test');
      expect((await c2.command(bad)).code).toBe(535); // 4th failure from this IP
      // Locked: even the right password gets 454 now.
      expect((await c2.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).text).toMatch(/^454 4\.7\.0 Too many failed authentication attempts/);
      c2.close();
    } finally {
      await gw.close();
    }
  });

  it('successful logins do not count against their address (the failure reserved before the check is given back)', async () => {
    const gw = await startAcl({ auth: { usersFile }, limits: { authFailures: { max: 2, window: '1h' }, authFailuresPerSession: 10 } }, { smtp: { authWithoutTls: true } });
    try {
      // Many successes, in parallel and in a row, leave the address unlocked.
      const codes = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const { client } = await Client.open(gw.port);
          await client.command('EHLO client.test');
          const code = (await client.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).code;
          client.close();
          return code;
        }),
      );
      // Parallel successes may briefly hold all the reservations (454), never more than that.
      expect(codes.filter((c) => c === 235).length).toBeGreaterThanOrEqual(2);
      expect(codes.every((c) => c === 235 || c === 454)).toBe(true);
      for (let i = 0; i < 3; i++) {
        const { client } = await Client.open(gw.port);
        await client.command('EHLO client.test');
        expect((await client.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).code).toBe(235);
        client.close();
      }
      // The failure limit is still whole: two failures, then locked.
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      expect((await client.command(`AUTH PLAIN ${b64('\0alice\0nope')}`)).code).toBe(535);
      expect((await client.command(`AUTH PLAIN ${b64('\0alice\0nope')}`)).code).toBe(535);
      expect((await client.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).code).toBe(454);
      client.close();
    } finally {
      await gw.close();
    }
  });

  it('a failed AUTH LOGIN over a real client is refused and counted too', async () => {
    const gw = await startAcl({ auth: { usersFile }, limits: { authFailures: { max: 1, window: '1h' } } }, { smtp: { authWithoutTls: true } });
    try {
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      expect((await client.command('AUTH LOGIN')).code).toBe(334);
      expect((await client.command(b64('nobody'))).code).toBe(334);
      expect((await client.command(b64('whatever'))).code).toBe(535);
      expect((await client.command(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).code).toBe(454);
      client.close();
    } finally {
      await gw.close();
    }
  });
});

describe('without a users file', () => {
  it('AUTH is not offered and a message from an unauthenticated client outside relayFrom is not relayed', async () => {
    const gw = await startAcl({ localDomains: ['local.test'] }, { smtp: { authWithoutTls: true } });
    try {
      const { client } = await Client.open(gw.port);
      const ehlo = await client.command('EHLO client.test');
      expect(ehlo.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
      expect((await sendMessage(client, 'a@remote.test', ['x@remote2.test'])).code).toBe(554);
      client.close();
    } finally {
      await gw.close();
    }
  });
});
