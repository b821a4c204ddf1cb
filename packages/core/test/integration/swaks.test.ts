/**
 * swaks (the SMTP test tool admins reach for) against a real gateway: plain,
 * STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, pipelining, a body from a file, a
 * 5 MB attachment through the spool file, and --quit-after stop points. The exit
 * status and the transcript are checked.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '@mailgate/core';
import { SWAKS, authPlugin, haveTool, run, startGateway, stripFirstReceived, textBody, type IntegrationGateway, type RunResult } from './helpers.js';

/** One line of a swaks transcript: direction and text. `~>`/`<~` are inside TLS. */
interface Line {
  dir: '->' | '<-' | '~>' | '<~' | '<**' | '<~*' | '***' | '===' | '*~>' | '**>';
  text: string;
}

function transcript(result: RunResult): Line[] {
  const lines: Line[] = [];
  for (const raw of result.stdout.split('\n')) {
    // swaks prints "<-  reply" (two spaces) for what it received and " -> line" for what it sent.
    const m = /^ ?(->|<-|~>|<~|<\*\*|<~\*|\*\*\*|===|\*~>|\*\*>) +(.*)$/.exec(raw.replace(/\r$/, ''));
    if (m) lines.push({ dir: m[1] as Line['dir'], text: m[2]! });
  }
  return lines;
}

/** Server reply lines (plaintext or TLS), e.g. ['220 mx.test ESMTP', '250-mx.test Hello ...', ...]. */
function replies(result: RunResult): string[] {
  return transcript(result)
    .filter((l) => l.dir === '<-' || l.dir === '<~' || l.dir === '<**' || l.dir === '<~*')
    .map((l) => l.text);
}
function sent(result: RunResult): string[] {
  return transcript(result)
    .filter((l) => l.dir === '->' || l.dir === '~>' || l.dir === '**>' || l.dir === '*~>')
    .map((l) => l.text);
}

const describeSwaks = haveTool(SWAKS) ? describe : describe.skip;

describeSwaks('swaks → gateway', () => {
  let gw: IntegrationGateway;
  let work: string;
  let quits = 0;

  function swaks(args: string[], port = gw.portOf(0), timeoutMs = 20_000): Promise<RunResult> {
    return run(
      SWAKS,
      ['--server', '127.0.0.1', '--port', String(port), '--ehlo', 'client.test', '--timeout', '15', '--from', 'alice@sender.test', '--to', 'bob@example.test', ...args],
      { timeoutMs },
    );
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'mailgate-swaks-'));
    gw = await startGateway(
      {
        withTls: true,
        listen: [
          { host: '127.0.0.1', port: 0, tls: 'starttls' },
          { host: '127.0.0.1', port: 0, tls: 'implicit' },
        ],
        spool: { memoryThreshold: '128KB' },
        limits: { maxMessageSize: '20MB' },
      },
      async (g) => {
        await g.use(authPlugin({ 'user@example.test': 'correct horse' }));
        await g.use(
          definePlugin({
            name: 'test-quit-counter',
            setup({ tap }) {
              tap('quit', () => {
                quits++;
              });
            },
          }),
        );
      },
    );
  });
  afterAll(async () => {
    await gw?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('plain send: exit 0, 250 queued, message stored', async () => {
    const before = gw.capture.messages.length;
    const r = await swaks(['--header', 'Subject: swaks plain']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rs = replies(r);
    expect(rs[0]).toBe('220 mx.test ESMTP');
    expect(rs.some((l) => /^250[- ]STARTTLS$/.test(l))).toBe(true);
    expect(rs.some((l) => /^250 2\.0\.0 OK: queued as /.test(l))).toBe(true);
    expect(rs.at(-1)).toBe('221 2.0.0 mx.test closing connection');
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.from).toBe('alice@sender.test');
    expect(m!.rcpts).toEqual(['bob@example.test']);
    expect(m!.helo).toBe('client.test');
    expect(m!.body.toString()).toMatch(/^Date: .*\r\nTo: bob@example\.test\r\nFrom: alice@sender\.test\r\nSubject: swaks plain\r\n/);
  });

  it('--tls (STARTTLS): the session continues encrypted', async () => {
    const before = gw.capture.messages.length;
    const r = await swaks(['--tls']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(sent(r)).toContain('STARTTLS');
    expect(replies(r)).toContain('220 2.0.0 Ready to start TLS');
    expect(transcript(r).some((l) => l.dir === '===' && /TLS started/.test(l.text))).toBe(true);
    // After TLS swaks sends EHLO again, inside TLS, and the reply no longer offers STARTTLS but offers AUTH.
    const tlsReplies = transcript(r).filter((l) => l.dir === '<~').map((l) => l.text);
    expect(tlsReplies.some((l) => l.includes('STARTTLS'))).toBe(false);
    expect(tlsReplies.some((l) => /^250[- ]AUTH PLAIN LOGIN$/.test(l))).toBe(true);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.tls).toMatchObject({ implicit: false });
  });

  it('--tlsc (implicit TLS on connect)', async () => {
    const before = gw.capture.messages.length;
    const r = await swaks(['--tlsc'], gw.portOf(1));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(sent(r)).not.toContain('STARTTLS');
    expect(replies(r)[0]).toBe('220 mx.test ESMTP');
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.tls).toMatchObject({ implicit: true });
  });

  it.each(['PLAIN', 'LOGIN'])('--auth %s over STARTTLS with the right password', async (mech) => {
    const before = gw.capture.messages.length;
    const r = await swaks(['--tls', '--auth', mech, '--auth-user', 'user@example.test', '--auth-password', 'correct horse']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(replies(r)).toContain('235 2.7.0 Authentication successful');
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.user).toBe('user@example.test');
  });

  it.each(['PLAIN', 'LOGIN'])('--auth %s with a wrong password: 535 and exit 28', async (mech) => {
    const before = gw.capture.messages.length;
    const r = await swaks(['--tls', '--auth', mech, '--auth-user', 'user@example.test', '--auth-password', 'wrong']);
    expect(r.code, r.stdout + r.stderr).toBe(28);
    expect(replies(r).some((l) => l.startsWith('535 5.7.8 '))).toBe(true);
    expect(gw.capture.messages.length).toBe(before);
  });

  it('--auth without TLS: AUTH is not advertised, swaks gives up (exit 28)', async () => {
    const r = await swaks(['--auth', 'PLAIN', '--auth-user', 'user@example.test', '--auth-password', 'correct horse']);
    expect(r.code, r.stdout + r.stderr).toBe(28);
    expect(replies(r).some((l) => l.startsWith('250-AUTH') || l.startsWith('250 AUTH'))).toBe(false);
  });

  it('--pipeline: envelope and DATA in one go, each answered in order', async () => {
    const before = gw.capture.messages.length;
    const r = await swaks(['--pipeline', '--to', 'one@example.test,two@example.test']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rs = replies(r);
    const i = rs.indexOf('250 2.1.0 Sender OK');
    expect(rs.slice(i, i + 4)).toEqual(['250 2.1.0 Sender OK', '250 2.1.5 Recipient OK', '250 2.1.5 Recipient OK', '354 End data with <CR><LF>.<CR><LF>']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.rcpts).toEqual(['one@example.test', 'two@example.test']);
  });

  it('--data @file: the body from a file is delivered byte for byte (dots stuffed by swaks, unstuffed by us)', async () => {
    // swaks ends the data with CRLF "." CRLF itself, adding a CRLF (an empty line if the file
    // already ends in one); so the file has no final line ending and the message gets exactly one.
    const content = `From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: from a file\r\n\r\n${textBody(400, 7)}.\r\n..\r\n. \r\nlast line`;
    const body = `${content}\r\n`;
    const file = join(work, 'body.eml');
    await writeFile(file, content);
    const before = gw.capture.messages.length;
    const r = await swaks(['--data', `@${file}`, '--suppress-data']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.body.toString('latin1')).toBe(body);
    expect(stripFirstReceived(m!.full).equals(Buffer.from(body))).toBe(true);
  });

  it('a 5 MB attachment goes through a spool file and arrives intact', async () => {
    const attachment = randomBytes(5 * 1024 * 1024);
    const file = join(work, 'big.bin');
    await writeFile(file, attachment);
    const before = gw.capture.messages.length;
    const r = await swaks(['--attach-type', 'application/octet-stream', '--attach', `@${file}`, '--suppress-data'], gw.portOf(0), 30_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.spoolPath).toBeDefined();
    expect(m!.spoolFileExisted).toBe(true);
    expect(m!.bodySize).toBeGreaterThan(6.5 * 1024 * 1024);
    // Find the base64 part and decode it.
    const text = m!.body.toString('latin1');
    const part = text.split(/\r\n--[^\r\n]+\r\n/).find((p) => /Content-Type: application\/octet-stream/i.test(p));
    expect(part).toBeDefined();
    const b64 = part!.slice(part!.indexOf('\r\n\r\n') + 4).replace(/\r\n--[^\r\n]*--\r\n[\s\S]*$/, '').replace(/\s+/g, '');
    expect(Buffer.from(b64, 'base64').equals(attachment)).toBe(true);
  });

  it.each([
    ['CONNECT', ['220 mx.test ESMTP'], 'EHLO'],
    ['EHLO', ['250 AUTH'], 'MAIL'],
    ['MAIL', ['250 2.1.0 Sender OK'], 'RCPT'],
    ['RCPT', ['250 2.1.5 Recipient OK'], 'DATA'],
  ] as const)('--quit-after %s: stops cleanly with QUIT there, nothing stored', async (point, expectedLast, notSent) => {
    const before = gw.capture.messages.length;
    const q = quits;
    const r = await swaks(['--quit-after', point, '--tls']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const s = sent(r);
    expect(s.at(-1)).toBe('QUIT');
    if (point === 'CONNECT') expect(s).toEqual(['QUIT']);
    else expect(s.some((l) => l.startsWith(notSent))).toBe(false);
    const rs = replies(r);
    expect(rs.at(-1)).toBe('221 2.0.0 mx.test closing connection');
    if (point !== 'EHLO') expect(rs.at(-2)).toBe(expectedLast[0]);
    expect(quits).toBeGreaterThan(q);
    expect(gw.capture.messages.length).toBe(before);
  });

  it('--quit-after STARTTLS quits right after the handshake', async () => {
    const r = await swaks(['--quit-after', 'STARTTLS', '--tls']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(sent(r).slice(-2)).toEqual(['STARTTLS', 'QUIT']);
  });

  it('an unknown-domain recipient is refused (554 5.7.1 relaying), exit 24', async () => {
    const relayOnly = await startGateway({}, undefined, { domains: ['example.test'] });
    try {
      const r = await swaks(['--to', 'someone@elsewhere.test'], relayOnly.port);
      expect(r.code, r.stdout + r.stderr).toBe(24);
      expect(replies(r)).toContain('554 5.7.1 <someone@elsewhere.test>: Relay access denied');
    } finally {
      await relayOnly.close();
    }
  });
});
