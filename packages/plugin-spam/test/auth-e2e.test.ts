/**
 * DKIM and DMARC end to end: nodemailer sends signed messages over loopback SMTP to a
 * gateway running plugin-spam, whose DNS (keys, DMARC policies, SPF) is a real server on
 * loopback; the storage plugin captures what was delivered. Also `mailgate spam check`
 * (the command's code, run in-process) and the header's sanitizing.
 */
import { Writable } from 'node:stream';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { resolveConfig, silentLogger } from '@mailgate/core';
import { startTestGateway } from '@mailgate/core/testing';
import { authResultsValue } from '../src/auth/index.js';
import { spamCommand } from '../src/commands.js';
import { spamOptionsSchema, spamPlugin, type SpamOptionsInput } from '../src/index.js';
import { mail, sign, useAuthDns } from './auth-helpers.js';
import { authAnyone, captureStorage, headerOf, type Stored } from './helpers.js';

type TransportOptions = Parameters<typeof nodemailer.createTransport>[0];

const { dns, cleanups } = useAuthDns();

async function start(options: SpamOptionsInput = {}): Promise<{ port: number; stored: Stored[] }> {
  const capture = captureStorage();
  const gw = await startTestGateway(
    { hostname: 'mx.auth.test', smtp: { authWithoutTls: true } },
    async (g) => {
      await g.use(authAnyone());
      await g.use(spamPlugin, { rules: { defaults: false }, ...options });
      await g.use(capture.plugin);
    },
    { logger: silentLogger, dns: dns.resolver },
  );
  cleanups.push(() => gw.close());
  return { port: gw.port, stored: capture.stored };
}

function send(port: number, from: string, raw: string) {
  return nodemailer
    .createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'client.example', connectionTimeout: 5_000, socketTimeout: 20_000 } as TransportOptions)
    .sendMail({ envelope: { from, to: ['bob@example.test'] }, raw });
}

const names = (s: Stored) => s.spam!.tests.map((t) => t.name);

describe('through the gateway', () => {
  it('a message signed by its From: domain arrives with dkim=pass and dmarc=pass', async () => {
    const { port, stored } = await start();
    const raw = await sign(mail('Ann <ann@reject.example>'), { domain: 'reject.example', key: 'ed25519' }, { domain: 'reject.example', key: 'rsa' });
    const info = await send(port, 'ann@reject.example', raw);
    expect(info.response).toMatch(/^250 /);
    const [msg] = stored;
    const ar = headerOf(msg!.full, 'Authentication-Results')!;
    expect(ar).toMatch(/^mx\.auth\.test; spf=pass smtp\.mailfrom=ann@reject\.example; /);
    expect(ar, ar).toMatch(/; dkim=pass header\.d=reject\.example header\.s=ed header\.a=ed25519-sha256 header\.b=("[^"]{8}"|[^ ;"]{8}); dkim=pass header\.d=reject\.example header\.s=rsa header\.a=rsa-sha256 /);
    expect(ar).toMatch(/; dmarc=pass \(p=REJECT\) header\.from=reject\.example$/);
    expect(names(msg!)).toEqual(expect.arrayContaining(['SPF_PASS', 'DKIM_VALID', 'DKIM_VALID_AU', 'DMARC_PASS']));
    // The header is folded, one method per line.
    expect(msg!.full).toMatch(/^Authentication-Results: mx\.auth\.test;\r\n\tspf=pass/m);
  });

  it('a forged From: of a p=reject domain gets DMARC_REJECT\'s points', async () => {
    const { port, stored } = await start();
    const raw = await sign(mail('Bank <support@reject.example>'), { domain: 'signer.example' });
    await send(port, 'bounce@bounce.signer.example', raw);
    const [msg] = stored;
    expect(msg!.spam!.tests.find((t) => t.name === 'DMARC_REJECT')?.score).toBe(5);
    expect(names(msg!)).toEqual(expect.arrayContaining(['SPF_PASS', 'DKIM_VALID', 'DMARC_REJECT']));
    expect(names(msg!)).not.toContain('DKIM_VALID_AU');
    expect(headerOf(msg!.full, 'Authentication-Results')).toMatch(/dmarc=fail \(p=REJECT dis=REJECT\) header\.from=reject\.example$/);
  });

  it('with rejectReject the forged message is refused with 550 5.7.1 after DATA', async () => {
    const { port, stored } = await start({ dmarc: { rejectReject: true } });
    const raw = await sign(mail('Bank <support@reject.example>'), { domain: 'signer.example' });
    const error = (await send(port, 'bounce@bounce.signer.example', raw).catch((e: unknown) => e)) as { responseCode?: number; response?: string };
    expect(error.responseCode).toBe(550);
    expect(error.response).toMatch(/^550 5\.7\.1 .*DMARC policy of reject\.example/);
    expect(stored).toHaveLength(0);
    // a DMARC pass of the same domain still goes through
    await send(port, 'ann@reject.example', await sign(mail('ann@reject.example'), { domain: 'reject.example' }));
    expect(stored).toHaveLength(1);
  });

  it('rejectReject never refuses on a DNS failure (temperror)', async () => {
    const { port, stored } = await start({ dmarc: { rejectReject: true } });
    await send(port, 'x@bounce.signer.example', mail('ceo@servfail.example'));
    expect(stored).toHaveLength(1);
    expect(headerOf(stored[0]!.full, 'Authentication-Results')).toMatch(/dmarc=temperror/);
  });

  it('a message over maxScanSize gets no DKIM check (nor DMARC): only spf in the header', async () => {
    const { port, stored } = await start({ maxScanSize: '2KB' });
    const raw = await sign(mail('ann@reject.example', 'x'.repeat(70).concat('\r\n').repeat(60)), { domain: 'reject.example' });
    expect(raw.length).toBeGreaterThan(2048);
    await send(port, 'ann@reject.example', raw);
    const [msg] = stored;
    expect(msg!.spam!.contentChecked).toBe(false);
    expect(names(msg!).filter((n) => /^(DKIM|DMARC)_/.test(n))).toEqual([]);
    expect(headerOf(msg!.full, 'Authentication-Results')).toBe('mx.auth.test; spf=pass smtp.mailfrom=ann@reject.example');
  });

  it('headers.authResults: false adds no header; dkim/dmarc false run nothing', async () => {
    const { port, stored } = await start({ headers: { authResults: false }, dkim: false, dmarc: false });
    await send(port, 'ann@reject.example', await sign(mail('ann@reject.example'), { domain: 'reject.example' }));
    expect(headerOf(stored[0]!.full, 'Authentication-Results')).toBeUndefined();
    expect(names(stored[0]!).filter((n) => /^(DKIM|DMARC)_/.test(n))).toEqual([]);
  });
});

describe('mailgate spam check', () => {
  it('prints the DKIM and DMARC tests, with SPF alignment when --ip is given', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'auth-check-'));
    try {
      const file = join(dir, 'forged.eml');
      await writeFile(file, await sign(mail('Bank <support@reject.example>'), { domain: 'signer.example' }));
      const config = resolveConfig({ hostname: 'mx.auth.test', dns: { servers: [dns.server.address], timeout: '500ms', retries: 1 } });
      let out = '';
      const stdout = new Writable({ write: (chunk: Buffer, _e, cb) => ((out += chunk.toString()), cb()) });
      const stderr = new Writable({ write: (_c, _e, cb) => cb() });
      const options = spamOptionsSchema.parse({ rules: { defaults: false } });
      expect(await spamCommand.run(['check', file], { options, configDir: dir, config, stdout, stderr })).toBe(0);
      expect(out).toMatch(/^ *-0\.1 DKIM_VALID +DKIM: valid signature from signer\.example$/m);
      expect(out).toMatch(/^ +5\.0 DMARC_REJECT +DMARC: reject\.example fails, its policy is reject$/m);
      out = '';
      await writeFile(file, mail('ann@reject.example'));
      expect(await spamCommand.run(['check', '--ip', '127.0.0.1', '--sender', 'ann@reject.example', file], { options, configDir: dir, config, stdout, stderr })).toBe(0);
      expect(out).toMatch(/^ *-0\.1 DMARC_PASS +DMARC: reject\.example passes \(aligned SPF\)$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Authentication-Results value', () => {
  it('quotes and flattens what came from the message: no CR/LF, no fake results', () => {
    const value = authResultsValue({
      receiver: 'mx.test\r\nX-Evil: 1',
      dkim: [{ result: 'fail', domain: 'evil.example; dkim=pass', selector: 'a"b\\c', algorithm: 'rsa-sha256\r\nX-Injected: yes', comment: 'bad (very) bad\\' }],
      dmarc: { result: 'none', domain: 'x.example', comment: 'no DMARC record' },
    });
    const lines = value.split('\r\n\t');
    for (const line of lines) expect(line).not.toMatch(/[\r\n]/);
    expect(lines).toEqual([
      '"mx.test??X-Evil: 1";',
      'dkim=fail (bad \\(very\\) bad\\\\) header.d="evil.example; dkim=pass" header.s="a\\"b\\\\c" header.a="rsa-sha256??X-Injected: yes";',
      'dmarc=none (no DMARC record) header.from=x.example',
    ]);
  });

  it('never writes a hostile value as a different, valid one', () => {
    // A NUL, a zero-width space or a trailing space used to be dropped (header.d=bank.example).
    const value = authResultsValue({
      receiver: 'mx.test',
      dkim: [{ result: 'fail', domain: 'bank.example\u0000', selector: 'sel\u200b' }],
      dmarc: { result: 'fail', domain: 'bank.example ' },
    });
    expect(value).toBe('mx.test;\r\n\tdkim=fail header.d="bank.example?" header.s="sel?";\r\n\tdmarc=fail header.from="bank.example "');
  });

  it('a header.b with "/" or "=" (tspecials) is a quoted-string, a plain one a token', () => {
    expect(authResultsValue({ receiver: 'mx.test', dkim: [{ result: 'pass', b: 'ab/c+d=e' }] })).toBe('mx.test;\r\n\tdkim=pass header.b="ab/c+d=e"');
    expect(authResultsValue({ receiver: 'mx.test', dkim: [{ result: 'pass', b: 'abCD12+x' }] })).toBe('mx.test;\r\n\tdkim=pass header.b=abCD12+x');
  });

  it('nothing checked: "none"', () => {
    expect(authResultsValue({ receiver: 'mx.test' })).toBe('mx.test; none');
  });
});
