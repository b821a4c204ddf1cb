import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/index.js';
import { Client, sendMessage, startAcl, tryRecipients, type AclGateway } from './helpers.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/**
 * The usual open-relay probes (the kind RelayScanner and the old ORDB tests sent).
 * local.test is our domain; nothing else is. Every one must be refused for a client
 * that is neither authenticated nor in relayFrom.
 */
const PROBES: string[] = [
  'user@other.test',
  'USER@OTHER.TEST',
  'user@other.test.', // trailing dot: the core strips it, still other.test
  'user@local.test.evil.test',
  'user@evil.test',
  'user@sublocal.test',
  'user@sub.local.test', // a subdomain is not the domain
  'user@xlocal.test',
  'user%other.test@local.test', // percent hack
  'user%other.test@LOCAL.TEST',
  'other.test!user@local.test', // bang path
  '"user@other.test"@local.test', // quoted local part with an @
  '"user%other.test"@local.test',
  '"user!other"@local.test',
  '@local.test:user@other.test', // source route: the core ignores the route
  '@local.test,@local.test:user@other.test',
  'user@[127.0.0.1]', // address literals
  'user@[192.0.2.1]',
  'user@[IPv6:::1]',
  'user@[IPv6:2001:db8::1]',
  'postmaster@other.test', // postmaster of somebody else's domain
  'user@lоcal.test', // Cyrillic о (needs SMTPUTF8)
  'user@ｌｏｃａｌ.test', // full-width letters: IDNA mapping would fold them to local.test
  'user@\u212Aocal.test', // KELVIN SIGN; toLowerCase() would fold it to "k"
];

function rcptArgument(probe: string): string {
  return `<${probe}>`;
}

describe('relay control', () => {
  let dir: string;
  let usersFile: string;
  let gw: AclGateway;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'acl-relay-'));
    usersFile = join(dir, 'users');
    await writeFile(usersFile, `sender:${await hashPassword('pw', { ln: 10 })}:*@*\n`);
    gw = await startAcl(
      {
        localDomains: ['local.test', 'xn--bcher-kva.test'],
        relayDomains: ['backend.test', '.partner.test'],
        relayFrom: ['127.0.0.2', '10.0.0.0/8'],
        auth: { usersFile },
      },
      // The core closes a session after limits.maxErrors error replies: the battery needs more.
      { smtp: { authWithoutTls: true }, limits: { maxErrors: 100 } },
    );
  });
  afterAll(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('with no options at all, nothing is relayed (554 5.7.1) and nothing is local', async () => {
    const bare = await startAcl({});
    try {
      const { client } = await Client.open(bare.port);
      const [r1, r2] = await tryRecipients(client, 'a@x.test', ['user@other.test', 'user@localhost']);
      expect(r1!.text).toBe('554 5.7.1 <user@other.test>: Relay access denied');
      expect(r2!.code).toBe(554);
      client.close();
      expect(bare.claims.claimed).toEqual([]);
    } finally {
      await bare.close();
    }
  });

  it('accepts local domains from anyone (any case, trailing dot, IDN), without relayAllowed', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'someone@remote.test', ['user@local.test', 'User@LOCAL.Test', 'user@local.test.', 'x@bücher.test', 'x@xn--bcher-kva.test']);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250, 250]);
    client.close();
    expect(gw.claims.claimed.slice(-5).every((c) => !c.relayAllowed)).toBe(true);
  });

  it('refuses every open-relay probe from an untrusted client', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'spammer@evil.test', PROBES.map(rcptArgument));
    const failures = PROBES.map((p, i) => ({ probe: p, reply: replies[i]!.text })).filter((r) => !/^5\d\d /.test(r.reply));
    expect(failures).toEqual([]);
    // Relay denials say so (the core's 550 5.1.1 would only appear for local mailboxes).
    for (const [i, reply] of replies.entries()) expect(reply.text, PROBES[i]).toMatch(/^554 5\.7\.1 .*Relay access denied|^550 5\.1\.1/);
    expect(await client.command('DATA')).toMatchObject({ code: 554 }); // no valid recipients
    client.close();
  });

  it('refuses the probes over plain DATA too: nothing is queued', async () => {
    const before = gw.claims.queued.length;
    for (const probe of ['user@other.test', 'user%other.test@local.test', 'user@[127.0.0.1]']) {
      const { client } = await Client.open(gw.port);
      await client.command('EHLO client.test');
      const reply = await sendMessage(client, 'spammer@evil.test', [probe]);
      expect(reply.code, probe).toBe(554);
      client.close();
    }
    expect(gw.claims.queued.length).toBe(before);
  });

  it('relays for relayFrom networks (127.0.0.2), with relayAllowed', async () => {
    const { client } = await Client.open(gw.port, { localAddress: '127.0.0.2' });
    const relayable = ['user@other.test', 'USER@OTHER.TEST', 'user@evil.test', 'user%other.test@local.test'];
    const replies = await tryRecipients(client, 'app@local.test', relayable);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250]);
    // Address literals stay refused unless relayToAddressLiterals.
    expect((await client.command('RCPT TO:<user@[192.0.2.1]>')).text).toMatch(/^554 5\.7\.1/);
    client.close();
    const claims = gw.claims.claimed.slice(-4);
    expect(claims).toEqual([
      { rcpt: 'user@other.test', relayAllowed: true },
      { rcpt: 'USER@OTHER.TEST', relayAllowed: true },
      { rcpt: 'user@evil.test', relayAllowed: true },
      // a local domain: delivered (or refused) by the mailbox plugin, never "relayed"
      { rcpt: 'user%other.test@local.test', relayAllowed: false },
    ]);
  });

  /** What a trusted client gets for each probe: relayed, local (never relayed), or refused (address literals). */
  function expectedForTrusted(probe: string): { code: number; relayAllowed?: boolean } {
    if (/@\[/.test(probe)) return { code: 554 }; // relayToAddressLiterals is off
    if (/@local\.test$/i.test(probe)) return { code: 250, relayAllowed: false };
    return { code: 250, relayAllowed: true };
  }

  for (const who of ['relayFrom', 'authenticated'] as const) {
    it(`the same probes from a trusted client (${who}) are relayed with relayAllowed, or stay local`, async () => {
      const { client } = await Client.open(gw.port, who === 'relayFrom' ? { localAddress: '127.0.0.2' } : {});
      if (who === 'authenticated') {
        await client.command('EHLO client.test');
        expect((await client.command(`AUTH PLAIN ${b64('\0sender\0pw')}`)).code).toBe(235);
      }
      const before = gw.claims.claimed.length;
      const replies = await tryRecipients(client, 'me@mine.test', PROBES.map(rcptArgument));
      client.close();
      const claimed = gw.claims.claimed.slice(before);
      let next = 0;
      for (const [i, probe] of PROBES.entries()) {
        const want = expectedForTrusted(probe);
        expect(replies[i]!.code, probe).toBe(want.code);
        if (want.code === 250) expect(claimed[next++]!.relayAllowed, probe).toBe(want.relayAllowed);
      }
      expect(next).toBe(claimed.length);
    });
  }

  it('relays for authenticated users, and the message is accepted', async () => {
    const { client } = await Client.open(gw.port);
    await client.command('EHLO client.test');
    expect((await client.command(`AUTH PLAIN ${b64('\0sender\0pw')}`)).code).toBe(235);
    const reply = await sendMessage(client, 'me@mine.test', ['friend@other.test', 'user@local.test']);
    expect(reply.text).toMatch(/^250 /);
    client.close();
    expect(gw.claims.queued.at(-1)).toEqual({ from: 'me@mine.test', to: ['friend@other.test', 'user@local.test'] });
  });

  it('relay domains are relayed for anyone; their subdomains only when listed with a dot', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, 'x@remote.test', ['a@backend.test', 'a@sub.backend.test', 'a@mx.partner.test', 'a@partner.test', 'a%b@backend.test']);
    expect(replies.map((r) => r.code)).toEqual([250, 554, 250, 554, 554]);
    client.close();
    expect(gw.claims.claimed.slice(-2)).toEqual([
      { rcpt: 'a@backend.test', relayAllowed: true },
      { rcpt: 'a@mx.partner.test', relayAllowed: true },
    ]);
  });

  it('postmaster: <postmaster> and postmaster@local are reachable, from the null sender too', async () => {
    const { client } = await Client.open(gw.port);
    const replies = await tryRecipients(client, '', ['<postmaster>', '<POSTMASTER@local.test>', '<postmaster@other.test>']);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 554]);
    client.close();
  });
});

describe('address literals', () => {
  it('our own literal is local when listed; others relay only with relayToAddressLiterals', async () => {
    const gw = await startAcl({ localAddressLiterals: ['127.0.0.1', '::1'], relayFrom: ['127.0.0.2'], relayToAddressLiterals: true });
    try {
      const untrusted = (await Client.open(gw.port)).client;
      const r = await tryRecipients(untrusted, 'a@x.test', ['user@[127.0.0.1]', 'user@[IPv6:::1]', 'user@[IPv6:0:0::1]', 'user@[192.0.2.1]']);
      // [IPv6:0:0::1] is ::1 for the ACL, but the core and storage plugins compare literals as text:
      // nobody claims that spelling, so the core's default policy refuses it.
      expect(r.map((x) => x.code)).toEqual([250, 250, 554, 554]);
      untrusted.close();
      const trusted = (await Client.open(gw.port, { localAddress: '127.0.0.2' })).client;
      const t = await tryRecipients(trusted, 'a@x.test', ['user@[192.0.2.1]']);
      expect(t.map((x) => x.code)).toEqual([250]);
      trusted.close();
      expect(gw.claims.claimed.at(-1)).toEqual({ rcpt: 'user@[192.0.2.1]', relayAllowed: true });
    } finally {
      await gw.close();
    }
  });
});
