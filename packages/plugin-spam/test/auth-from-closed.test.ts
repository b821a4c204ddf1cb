/**
 * DMARC fails closed on a From: the plugin cannot fully evaluate (findings of the hostile
 * test: each of these got 250 instead of 550 with dmarc.rejectReject):
 * - more than MAX_HEADER_LINES header lines before From: (mailauth's parser is not run, it
 *   used to be the only reader of From:);
 * - the forged domain as the 6th author domain (only 5 were evaluated);
 * - group syntax (`From: grp: ceo@example;`, mailauth dropped group members);
 * - a From: too large to parse (20 000 addresses: seconds of CPU in the address parser).
 * And the content parser's field cap must not hide From:/Subject:/Date: from the rules.
 */
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@mailgate/core';
import { startTestGateway } from '@mailgate/core/testing';
import { MAX_DOMAINS, MAX_FROM_BYTES, MAX_HEADER_LINES, evaluateDmarc, mailauthResolver, verifyDkim } from '../src/auth/index.js';
import { SpamChecks } from '../src/checks.js';
import { MAX_HEADER_FIELDS, parseContent } from '../src/content.js';
import { spamOptionsSchema, spamPlugin } from '../src/index.js';
import { mail, sign, useAuthDns } from './auth-helpers.js';
import { authAnyone, captureStorage } from './helpers.js';

const { dns, cleanups } = useAuthDns();

const checks = () => new SpamChecks(spamOptionsSchema.parse({}), dns.resolver, silentLogger, undefined);
const authOf = (raw: string) => checks().authentication(Buffer.from(raw), undefined);
/** `lines` header lines above the message (one field, folded) */
const padded = (raw: string, lines: number) => 'X-Filler: a\r\n' + ' folded\r\n'.repeat(lines - 1) + raw;
const others = (n: number) => Array.from({ length: n }, (_, i) => `a${i}@other${i}.example`);

describe('a From: that cannot be hidden', () => {
  it(`more than ${MAX_HEADER_LINES} header lines before From: still give the authors, and DMARC fails`, async () => {
    const raw = padded(await sign(mail('Bank <support@reject.example>'), { domain: 'signer.example' }), MAX_HEADER_LINES + 1);
    const dkim = await verifyDkim(Buffer.from(raw), { resolver: mailauthResolver(dns.resolver) });
    expect(dkim.signatures[0]!.comment).toMatch(/not verified/);
    expect(dkim.headerFrom).toEqual(['support@reject.example']);
    const r = await authOf(raw);
    expect(r.dmarc).toMatchObject({ result: 'fail', domain: 'reject.example', disposition: 'reject' });
    expect(r.tests.map((t) => t.name)).toContain('DMARC_REJECT');
  });

  it('group syntax: the group\'s members are authors', async () => {
    const r = await authOf(mail('grp: support@reject.example;'));
    expect(r.dkim!.headerFrom).toEqual(['support@reject.example']);
    expect(r.dmarc).toMatchObject({ result: 'fail', domain: 'reject.example', disposition: 'reject' });
  });

  it(`the forged domain as the ${MAX_DOMAINS + 1}th author domain: permerror, disposition reject`, async () => {
    const r = await authOf(mail([...others(MAX_DOMAINS), 'support@reject.example'].join(', ')));
    expect(r.dmarc).toMatchObject({ result: 'permerror', disposition: 'reject' });
    expect(r.dmarc!.comment).toMatch(/more than 5 author domains/);
    expect(r.tests.map((t) => t.name)).toContain('DMARC_REJECT');
    // up to the cap every domain is evaluated: the 5th is not skipped either
    const five = await authOf(mail([...others(MAX_DOMAINS - 1), 'support@reject.example'].join(', ')));
    expect(five.dmarc).toMatchObject({ result: 'fail', domain: 'reject.example', disposition: 'reject' });
  });

  it('an unreadable author beside a real one: permerror, disposition reject', async () => {
    for (const from of ['support@reject.example, Bob', 'Bob, grp: ceo@reject.example;']) {
      const r = await authOf(mail(from));
      expect(r.dmarc, from).toMatchObject({ result: 'permerror', disposition: 'reject' });
    }
    const resolver = mailauthResolver(dns.resolver);
    expect(await evaluateDmarc({ headerFrom: ['x@reject.example'], fromProblem: 'From: field without an address', dkim: [], resolver })).toMatchObject({ result: 'permerror', disposition: 'reject' });
  });

  it('a From: with no usable domain at all claims none that could be forged: none, nothing refused', async () => {
    // cron mail, local programs, "undisclosed-recipients": legitimate, and no DMARC domain in them
    for (const from of ['Ann', 'root (Cron Daemon)', 'root@localhost', 'x@[192.0.2.1]', 'undisclosed-recipients:;']) {
      const r = await authOf(mail(from));
      expect(r.dmarc, from).toMatchObject({ result: 'none' });
      expect(r.tests.map((t) => t.name), from).not.toContain('DMARC_REJECT');
    }
  });
});

describe('a From: too large to parse (CPU)', () => {
  it(`20 000 addresses (over ${MAX_FROM_BYTES} bytes): not parsed, not verified, DMARC permerror`, async () => {
    const from = [...others(19_999), 'support@reject.example'].join(', ');
    expect(from.length).toBeGreaterThan(400_000);
    const raw = await sign(mail('ann@signer.example'), { domain: 'signer.example' });
    const big = raw.replace('From: ann@signer.example', `From: ${from}`);
    const r = await authOf(big);
    expect(r.dkim!.headerFrom).toEqual([]);
    expect(r.dkim!.signatures).toEqual([{ result: 'neutral', comment: expect.stringMatching(/not verified: From: of \d+ bytes/) }]);
    expect(r.dmarc).toMatchObject({ result: 'permerror', disposition: 'reject' });
    expect(r.tests.map((t) => t.name)).toEqual(['DKIM_INVALID', 'DMARC_REJECT']);
    // a From: field just under the limit is still parsed and evaluated
    const small = await authOf(mail(`${'x'.repeat(MAX_FROM_BYTES - 200)} <support@reject.example>`));
    expect(small.dmarc).toMatchObject({ result: 'fail', domain: 'reject.example' });
  });
});

describe('through the gateway with rejectReject', () => {
  async function start(): Promise<{ port: number; stored: unknown[] }> {
    const capture = captureStorage();
    const gw = await startTestGateway(
      { hostname: 'mx.auth.test', smtp: { authWithoutTls: true } },
      async (g) => {
        await g.use(authAnyone());
        await g.use(spamPlugin, { rules: { defaults: false }, dmarc: { rejectReject: true } });
        await g.use(capture.plugin);
      },
      { logger: silentLogger, dns: dns.resolver },
    );
    cleanups.push(() => gw.close());
    return { port: gw.port, stored: capture.stored };
  }
  const send = (port: number, raw: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'client.example' } as Parameters<typeof nodemailer.createTransport>[0])
      .sendMail({ envelope: { from: 'x@bounce.signer.example', to: ['bob@example.test'] }, raw })
      .catch((e: unknown) => e as { responseCode?: number; response?: string });

  it('each bypass of the hostile test now gets 550', async () => {
    const { port, stored } = await start();
    const cases = {
      lines: padded(mail('ceo@reject.example'), MAX_HEADER_LINES + 5),
      sixth: mail([...others(5), 'ceo@reject.example'].join(', ')),
      group: mail('grp: ceo@reject.example;'),
      // far over the 8 KiB From: cap, within the core's 256 KiB header section (past it the core refuses with 552)
      huge: mail([...others(8_000), 'ceo@reject.example'].join(', ')),
    };
    for (const [what, raw] of Object.entries(cases)) {
      const answer = (await send(port, raw)) as { responseCode?: number; response?: string };
      expect(answer.responseCode, what).toBe(550);
      expect(answer.response, what).toMatch(/^550 5\.7\.1 .*DMARC/);
    }
    expect(stored).toHaveLength(0);
  });
});

describe('content: the field cap hides no essential field', () => {
  it(`From:, Subject:, Date: below ${MAX_HEADER_FIELDS} other fields are still seen; MISSING_* do not fire`, async () => {
    const filler = Array.from({ length: MAX_HEADER_FIELDS + 500 }, (_, i) => `X-Filler-${i}: ${i}`).join('\r\n');
    const raw = `${filler}\r\n${mail('Ann <ann@example.test>')}`;
    const content = await parseContent(Buffer.from(raw));
    expect(content.from).toBe('Ann <ann@example.test>');
    const names = content.headers.map((h) => h.name.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(['from', 'to', 'subject', 'date', 'message-id']));
    expect(content.headers.length).toBeLessThanOrEqual(MAX_HEADER_FIELDS + 8);
    const { tests } = await checks().content(Buffer.from(raw));
    expect(tests.map((t) => t.name).filter((n) => n.startsWith('MISSING_'))).toEqual([]);
  });

  it('a message really without them still gets MISSING_*', async () => {
    const filler = Array.from({ length: MAX_HEADER_FIELDS + 5 }, (_, i) => `X-Filler-${i}: ${i}`).join('\r\n');
    const { tests } = await checks().content(Buffer.from(`${filler}\r\n\r\nbody\r\n`));
    expect(tests.map((t) => t.name)).toEqual(expect.arrayContaining(['MISSING_FROM', 'MISSING_SUBJECT', 'MISSING_DATE']));
  });
});
