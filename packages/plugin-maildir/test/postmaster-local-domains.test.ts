import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { definePlugin, type GatewayConfigInput } from '@mailgate/core';
import { startTestGateway, type TestGateway } from '@mailgate/core/testing';
import maildirPlugin, { type MaildirOptionsInput } from '@mailgate/plugin-maildir';
import { z } from 'zod';
import { readMaildir, send } from './helpers.js';

/** Declares local domains the way plugin-acl's `localDomains` does (gateway.addLocalDomain at setup). */
const localDomainsPlugin = definePlugin({
  name: 'local-domains',
  options: z.strictObject({ localDomains: z.array(z.string()) }),
  setup({ options, gateway }) {
    for (const d of options.localDomains) gateway.addLocalDomain(d);
  },
});

function message(subject: string): Buffer {
  return Buffer.from(`From: <sender@client.test>\r\nTo: <postmaster>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@client.test>\r\n\r\nHello.\r\n`);
}

let gw: (TestGateway & { root: string }) | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** A gateway with local domains from another plugin and plugin-maildir without `domains`. */
async function start(
  maildir: Omit<MaildirOptionsInput, 'root'>,
  { config = {}, domainsAfter = false }: { config?: GatewayConfigInput; domainsAfter?: boolean } = {},
): Promise<TestGateway & { root: string }> {
  let root = '';
  const t = await startTestGateway(config, async (gateway, dir) => {
    root = join(dir, 'var/maildir');
    const domains = { localDomains: ['example.com', 'example.net'] };
    if (!domainsAfter) await gateway.use(localDomainsPlugin, domains);
    await gateway.use(maildirPlugin, { root, ...maildir } as MaildirOptionsInput);
    if (domainsAfter) await gateway.use(localDomainsPlugin, domains);
  });
  return Object.assign(t, { root });
}

describe('bare RCPT TO:<postmaster> with `domains` omitted (local domains from other plugins)', () => {
  const configurations: Array<[string, Omit<MaildirOptionsInput, 'root'>]> = [
    ['every address accepted', {}],
    ['mailboxes: [alice, postmaster]', { mailboxes: ['alice', 'postmaster'] }],
  ];

  for (const [what, options] of configurations) {
    it(`${what}: goes to postmaster@ the first local domain, as the first recipient`, async () => {
      gw = await start(options);
      const r = await send(gw.port, 's@client.test', ['postmaster'], message(`pm ${what}`));
      expect(r.replies[1]).toMatch(/^250 /);
      expect(r.data?.code).toBe(250);
      const stored = await readMaildir(join(gw.root, 'example.com/postmaster'));
      expect(stored).toHaveLength(1);
      expect(stored[0]!.bytes.toString()).toContain('Delivered-To: postmaster@example.com\r\n');
    });
  }

  it('whatever the plugin order (the domains declared after plugin-maildir\'s setup)', async () => {
    gw = await start({ mailboxes: ['alice', 'postmaster'] }, { domainsAfter: true });
    const r = await send(gw.port, 's@client.test', ['postmaster'], message('pm after'));
    expect(r.rcpt).toEqual([250]);
    expect(r.data?.code).toBe(250);
    expect(await readMaildir(join(gw.root, 'example.com/postmaster'))).toHaveLength(1);
  });

  it('the `postmaster` option still decides', async () => {
    gw = await start({ mailboxes: ['alice'], postmaster: 'alice@example.net' });
    const r = await send(gw.port, 's@client.test', ['postmaster'], message('pm option'));
    expect(r.rcpt).toEqual([250]);
    expect(await readMaildir(join(gw.root, 'example.net/alice'))).toHaveLength(1);
  });

  it('no local domain at all: refused (nowhere to deliver it), as before', async () => {
    let root = '';
    gw = Object.assign(
      await startTestGateway({}, async (gateway, dir) => {
        root = join(dir, 'var/maildir');
        await gateway.use(maildirPlugin, { root });
      }),
      { root },
    );
    const r = await send(gw.port, 's@client.test', ['postmaster'], message('pm unknown'));
    expect(r.replies[1]).toMatch(/^550 5\.1\.1 /);
  });
});
