/**
 * SMTP smuggling (CVE-2023-51764 and friends): no sequence other than <CRLF>.<CRLF>
 * may end a message, so a "second message" hidden in the body after such a sequence
 * never becomes a transaction and its commands are never answered. Under the default
 * `bareLineEndings: reject` the whole message is refused (550 5.6.11); under
 * `normalize` it is accepted as ONE message with every line ending made CRLF.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GO_AHEAD, OK_MAIL, OK_RCPT, envelope, lines, ready, splitAt, splitReceived, storeGateway } from './helpers.js';

const SEQUENCES: Array<[string, string]> = [
  ['<LF>.<LF>', '\n.\n'],
  ['<LF>.<CRLF>', '\n.\r\n'],
  ['<CRLF>.<LF>', '\r\n.\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<CRLF>.<CR>', '\r\n.\r'],
  ['<CR>.<CRLF>', '\r.\r\n'],
  ['<LF>.<CR>', '\n.\r'],
  ['<CR>.<LF>', '\r.\n'],
  ['<LF><LF>.<LF><LF>', '\n\n.\n\n'],
  ['<CR><LF><LF>.<LF>', '\r\n\n.\n'],
];

const SMUGGLED = lines('MAIL FROM:<admin@bank.test>', 'RCPT TO:<victim@example.test>', 'DATA', 'From: admin@bank.test', 'Subject: smuggled', '', 'pay now');

/** The body a first message carries: a line, the sequence, then a whole second SMTP transaction. */
function smugglingBody(sequence: string): string {
  return `Subject: hello\r\n\r\nfirst${sequence}${SMUGGLED}.\r\n`;
}

/** What 'normalize' must store: lines end at CRLF, bare CR or bare LF; one leading dot removed; CRLF endings. */
function normalized(content: string): string {
  const parts = content.split(/\r\n|\r|\n/);
  parts.pop(); // content ends with a line ending
  return parts.map((l) => (l.startsWith('.') ? l.slice(1) : l) + '\r\n').join('');
}

describe('SMTP smuggling sequences never end the data early', () => {
  it.each(SEQUENCES)('%s under bareLineEndings=reject: one 550 5.6.11, nothing queued, no reply to the smuggled commands', async (_n, seq) => {
    const { gw, stored } = await storeGateway();
    let mails = 0;
    gw.hooks.mail.tap({ name: 'count' }, () => void mails++);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test'))).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    const out = await s.send(smugglingBody(seq));
    expect(out).toMatch(/^550 5\.6\.11 Message refused: bare <(LF|CR)> in message; lines must end with <CR><LF> \(RFC 5321 2\.3\.8\)\r\n$/);
    expect(stored).toHaveLength(0);
    expect(mails).toBe(1);
    expect(s.session.transaction).toBeUndefined();
    // The session is in sync: the next command is a command.
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it.each(SEQUENCES)('%s under bareLineEndings=normalize: exactly one message, CRLF only, smuggled text stays body', async (_n, seq) => {
    const { gw, stored } = await storeGateway({ smtp: { bareLineEndings: 'normalize' } });
    const s = await ready(gw, { id: 'NORM' });
    await s.send(envelope('a@b.test', 'x@example.test'));
    const wire = smugglingBody(seq);
    expect(await s.send(wire)).toBe('250 2.0.0 OK: queued as NORM.1\r\n');
    expect(stored).toHaveLength(1);
    expect(stored[0]!.rcpts).toEqual(['x@example.test']);
    const stored0 = splitReceived(stored[0]!.bytes).rest.toString('latin1');
    expect(stored0).toBe(normalized(wire.slice(0, -3)));
    expect(stored0).toContain('MAIL FROM:<admin@bank.test>\r\n');
    expect(stored0).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    expect(await s.send('QUIT\r\n')).toBe('221 2.0.0 mx.test closing connection\r\n');
  });

  it.each(SEQUENCES)('%s right after the 354 (start of data) does not end it either', async (_n, seq) => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    expect(await s.send(`${seq}${SMUGGLED}`)).toBe('');
    expect(await s.send('.\r\n')).toMatch(/^550 5\.6\.11 /);
    expect(stored).toHaveLength(0);
  });

  it('the smuggled message pipelined in the same write as the whole first dialogue: one transaction only', async () => {
    for (const [, seq] of SEQUENCES) {
      for (const policy of ['reject', 'normalize'] as const) {
        const { gw, stored } = await storeGateway({ smtp: { bareLineEndings: policy } });
        let rcpts = 0;
        gw.hooks.rcpt.tap({ name: 'count' }, () => void rcpts++);
        const s = await ready(gw);
        const out = await s.send(envelope('a@b.test', 'x@example.test') + smugglingBody(seq) + 'QUIT\r\n');
        const final = policy === 'reject' ? '550 5.6.11 ' : '250 2.0.0 OK: queued as ';
        const replies = out.split('\r\n').filter(Boolean);
        expect(replies.map((r) => r.slice(0, 3))).toEqual(['250', '250', '354', final.slice(0, 3), '221']);
        expect(replies[3]!.startsWith(final)).toBe(true);
        expect(stored).toHaveLength(policy === 'reject' ? 0 : 1);
        expect(rcpts).toBe(1);
      }
    }
  });

  it('property: whatever the chunking, a smuggling body yields exactly the same single reply and message', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...SEQUENCES.map(([, seq]) => seq)),
        fc.constantFrom('reject' as const, 'normalize' as const),
        fc.array(fc.nat(400), { maxLength: 12 }),
        async (seq, policy, cuts) => {
          const { gw, stored } = await storeGateway({ smtp: { bareLineEndings: policy } });
          const s = await ready(gw, { id: 'P' });
          const wire = Buffer.from(envelope('a@b.test', 'x@example.test') + smugglingBody(seq) + 'NOOP\r\n');
          const out = await s.sendChunks(splitAt(wire, cuts));
          const final = policy === 'reject' ? /^550 5\.6\.11 [^\r]*\r\n$/ : /^250 2\.0\.0 OK: queued as P\.1\r\n$/;
          expect(out.startsWith(OK_MAIL + OK_RCPT + GO_AHEAD)).toBe(true);
          expect(out.endsWith('250 2.0.0 OK\r\n')).toBe(true);
          expect(out.slice((OK_MAIL + OK_RCPT + GO_AHEAD).length, -'250 2.0.0 OK\r\n'.length)).toMatch(final);
          expect(stored).toHaveLength(policy === 'reject' ? 0 : 1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
