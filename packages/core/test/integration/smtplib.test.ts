/**
 * Python's smtplib (Debian's /usr/bin/python3) against a real gateway: sendmail,
 * starttls(), login() with PLAIN and LOGIN, SMTP_SSL (implicit TLS), and
 * send_message with SMTPUTF8. smtplib has no BDAT, so CHUNKING is not covered here.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HERE, PYTHON, authPlugin, haveTool, run, startGateway, stripFirstReceived, textBody, type IntegrationGateway } from './helpers.js';

const SCRIPT = join(HERE, 'smtplib_client.py');

interface PyResult {
  exit: number | null;
  out: {
    ehlo?: [number, string];
    helo?: [number, string];
    features?: string[];
    features_tls?: string[];
    starttls?: [number, string];
    login?: [number, string];
    refused?: Record<string, [number, string]>;
    sent_b64?: string;
    error?: string;
    code?: number;
    message?: string;
    recipients?: Record<string, [number, string]>;
  };
  stderr: string;
}

async function smtplib(request: Record<string, unknown>): Promise<PyResult> {
  const r = await run(PYTHON, [SCRIPT, JSON.stringify({ host: '127.0.0.1', ...request })], { timeoutMs: 20_000 });
  let out: PyResult['out'] = {};
  try {
    out = JSON.parse(r.stdout) as PyResult['out'];
  } catch {
    throw new Error(`smtplib_client.py printed no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  return { exit: r.code, out, stderr: r.stderr };
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

const describePy = haveTool(PYTHON) ? describe : describe.skip;

describePy('Python smtplib → gateway', () => {
  let gw: IntegrationGateway;
  beforeAll(async () => {
    gw = await startGateway(
      {
        withTls: true,
        listen: [
          { host: '127.0.0.1', port: 0, tls: 'starttls' },
          { host: '127.0.0.1', port: 0, tls: 'implicit' },
        ],
      },
      // smtplib encodes credentials as ASCII, so no 8-bit password here.
      async (g) => g.use(authPlugin({ pyuser: 'python-pass s3cret' })),
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('SMTP.sendmail in plaintext delivers the exact bytes', async () => {
    const raw = `From: py@sender.test\r\nTo: bob@example.test\r\nSubject: smtplib\r\n\r\n${textBody(200, 3)}.\r\n..\r\nend\r\n`;
    const before = gw.capture.messages.length;
    const r = await smtplib({ port: gw.portOf(0), from: 'py@sender.test', to: ['bob@example.test', 'carol@example.test'], raw_b64: b64(raw) });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    expect(r.out.refused).toEqual({});
    expect(r.out.features).toEqual(expect.arrayContaining(['8bitmime', 'enhancedstatuscodes', 'pipelining', 'size', 'smtputf8', 'starttls', 'chunking']));
    expect(r.out.features).not.toContain('auth');
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.rcpts).toEqual(['bob@example.test', 'carol@example.test']);
    expect(m!.body.toString('latin1')).toBe(raw);
    expect(stripFirstReceived(m!.full).toString('latin1')).toBe(raw);
    // Two recipients: the Received header must not disclose them in a "for" clause.
    expect(m!.added[0]).not.toContain(' for <');
  });

  it('HELO (not EHLO) then sendmail: an RFC 821 client still works', async () => {
    const before = gw.capture.messages.length;
    const r = await smtplib({ port: gw.portOf(0), helo: true, from: 'py@sender.test', to: ['bob@example.test'], raw_b64: b64('Subject: helo\r\n\r\nplain old SMTP\r\n') });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.esmtp).toBe(false);
    expect(m!.added[0]).toContain(' with SMTP id ');
  });

  it('starttls() then sendmail', async () => {
    const before = gw.capture.messages.length;
    const r = await smtplib({ port: gw.portOf(0), starttls: true, from: 'py@sender.test', to: ['bob@example.test'], raw_b64: b64('Subject: tls\r\n\r\nover STARTTLS\r\n') });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    expect(r.out.starttls).toEqual([220, '2.0.0 Ready to start TLS']);
    expect(r.out.features_tls).not.toContain('starttls');
    expect(r.out.features_tls).toContain('auth');
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.tls).toMatchObject({ implicit: false });
  });

  it.each([
    ['login() (smtplib picks PLAIN)', {}],
    ['AUTH PLAIN with initial response', { mechanism: 'PLAIN' }],
    ['AUTH PLAIN without initial response', { mechanism: 'PLAIN', initial: false }],
    ['AUTH LOGIN', { mechanism: 'LOGIN', initial: false }],
    ['AUTH LOGIN with initial response', { mechanism: 'LOGIN', initial: true }],
  ])('starttls() + %s', async (_name, extra) => {
    const before = gw.capture.messages.length;
    const r = await smtplib({
      port: gw.portOf(0),
      starttls: true,
      login: { user: 'pyuser', password: 'python-pass s3cret', ...extra },
      from: 'py@sender.test',
      to: ['bob@example.test'],
      raw_b64: b64('Subject: auth\r\n\r\nauthenticated\r\n'),
    });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    expect(r.out.login).toEqual([235, '2.7.0 Authentication successful']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.user).toBe('pyuser');
  });

  it('login() with a wrong password raises SMTPAuthenticationError 535', async () => {
    const r = await smtplib({ port: gw.portOf(0), starttls: true, login: { user: 'pyuser', password: 'nope' } });
    expect(r.exit).toBe(3);
    expect(r.out.error).toBe('SMTPAuthenticationError');
    expect(r.out.code).toBe(535);
  });

  it('login() without TLS: the server offers no AUTH, smtplib refuses to try', async () => {
    const r = await smtplib({ port: gw.portOf(0), login: { user: 'pyuser', password: 'python-pass s3cret' } });
    expect(r.exit).toBe(5);
    expect(r.out.error).toBe('SMTPNotSupportedError');
  });

  it('SMTP_SSL (implicit TLS) with login', async () => {
    const before = gw.capture.messages.length;
    const r = await smtplib({
      port: gw.portOf(1),
      ssl: true,
      login: { user: 'pyuser', password: 'python-pass s3cret' },
      from: 'py@sender.test',
      to: ['bob@example.test'],
      raw_b64: b64('Subject: ssl\r\n\r\nSMTP_SSL\r\n'),
    });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    expect(r.out.features).not.toContain('starttls');
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.tls).toMatchObject({ implicit: true });
    expect(m!.added[0]).toContain(' with ESMTPSA id ');
  });

  const INTERNATIONAL = {
    utf8: true,
    from: 'Ελένη <ελένη@παράδειγμα.test>',
    to: ['δοκιμή@example.test'],
    subject: 'Δοκιμή ✓',
    text: 'Γειά σου κόσμε — ünïcödé\n.leading dot\n',
    attachments: [{ filename: 'data.bin', b64: b64(Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff))) }],
  };

  it('send_message with internationalized addresses (smtplib asserts SMTPUTF8 and BODY=8BITMIME itself)', async () => {
    const before = gw.capture.messages.length;
    const r = await smtplib({ port: gw.portOf(0), email: INTERNATIONAL });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.smtputf8).toBe(true);
    expect(m!.bodyType).toBe('8BITMIME');
    expect(m!.from).toBe('ελένη@παράδειγμα.test');
    expect(m!.rcpts).toEqual(['δοκιμή@example.test']);
    expect(m!.added[0]).toContain(' with UTF8SMTP id ');
    expect(m!.body.equals(Buffer.from(r.out.sent_b64!, 'base64'))).toBe(true);
    expect(m!.body.toString('utf8')).toContain('Subject: Δοκιμή ✓\r\n');
  });

  // Python's send_message(msg, mail_options=['SMTPUTF8']) sends SMTPUTF8 twice (it appends its own).
  it('send_message with internationalized addresses and mail_options=["SMTPUTF8"]', async () => {
    const before = gw.capture.messages.length;
    const r = await smtplib({ port: gw.portOf(0), mail_options: ['SMTPUTF8'], email: INTERNATIONAL });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.smtputf8).toBe(true);
    expect(m!.body.equals(Buffer.from(r.out.sent_b64!, 'base64'))).toBe(true);
  });

  it('send_message with ASCII addresses and mail_options=["SMTPUTF8"]', async () => {
    const before = gw.capture.messages.length;
    const r = await smtplib({
      port: gw.portOf(0),
      starttls: true,
      mail_options: ['SMTPUTF8'],
      email: { utf8: true, from: 'py@sender.test', to: ['bob@example.test'], subject: 'ünïcödé', text: 'ünïcödé body\n' },
    });
    expect(r.exit, JSON.stringify(r)).toBe(0);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.smtputf8).toBe(true);
    expect(m!.body.equals(Buffer.from(r.out.sent_b64!, 'base64'))).toBe(true);
  });

  it('sendmail with some recipients refused returns them and delivers to the rest', async () => {
    const scoped = await startGateway({}, undefined, { domains: ['example.test'] });
    try {
      const r = await smtplib({ port: scoped.port, from: 'py@sender.test', to: ['ok@example.test', 'no@elsewhere.test'], raw_b64: b64('Subject: x\r\n\r\nx\r\n') });
      expect(r.exit, JSON.stringify(r)).toBe(0);
      expect(r.out.refused).toEqual({ 'no@elsewhere.test': [554, '5.7.1 <no@elsewhere.test>: Relay access denied'] });
      const [m] = await scoped.capture.waitFor(1);
      expect(m!.rcpts).toEqual(['ok@example.test']);
      const all = await smtplib({ port: scoped.port, from: 'py@sender.test', to: ['no@elsewhere.test'], raw_b64: b64('Subject: x\r\n\r\nx\r\n') });
      expect(all.exit).toBe(4);
      expect(all.out.error).toBe('SMTPRecipientsRefused');
    } finally {
      await scoped.close();
    }
  });
});
