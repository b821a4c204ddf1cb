/**
 * Our DSNs are built from strings the client chose (its SMTPUTF8 sender and recipient
 * addresses) and the next hop chose (its replies). They were written out as latin1,
 * which keeps only the low 8 bits of each UTF-16 unit: U+010A became a LF and U+010D a
 * CR, so an address like "\u010d\u010aX-Injected:1"@… added header lines to the DSN
 * (the top-level To:, the report's fields), and every other non-ASCII character came
 * out garbled in a part that says charset=utf-8. They must come out as UTF-8, with no
 * CR or LF but the line ends we write; the returned original header section is kept
 * byte for byte.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDeliveryReport, parseMailFrom, parseRcptTo, type DeliveryReportInput } from '../../src/index.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const SENDER = '"\u010d\u010aX-Injected:sender"@sender.test';
const RECIPIENT = '"\u010d\u010aAction:delivered"@dest.test';
const UTF8_RECIPIENT = 'j\u00f6rg@dest.test';
/** A header section with a latin1-looking byte (0xE9) that must come back unchanged. */
const ORIGINAL = Buffer.from('Subject: caf\xe9\r\nFrom: a@sender.test\r\n\r\nbody\r\n', 'latin1');

async function dsn(overrides: Partial<DeliveryReportInput> = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-review-dsn-'));
  dirs.push(dir);
  const emlPath = join(dir, 'm.eml');
  await writeFile(emlPath, ORIGINAL);
  return buildDeliveryReport({
    hostname: 'mx.relay.test',
    queueId: 'Q1',
    reportId: 'B1',
    to: SENDER,
    originalSender: SENDER,
    arrival: new Date(),
    recipients: [
      { address: RECIPIENT, status: '5.1.1', diagnostic: '550 5.1.1 no such user \u010aStatus: 2.0.0', remoteMta: 'mx1.dest.test' },
      { address: UTF8_RECIPIENT, status: '5.1.1', diagnostic: '550 5.1.1 unbekannt: j\u00f6rg' },
    ],
    reason: 'failed',
    doubleBounce: false,
    original: emlPath,
    ...overrides,
  });
}

/** Every CR is followed by LF and every LF preceded by CR. */
function lineEndsOk(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] !== 10) return false;
    if (buf[i] === 10 && buf[i - 1] !== 13) return false;
  }
  return true;
}

describe('DSN text from client and server strings', () => {
  it('the addresses are ones the core accepts under SMTPUTF8', () => {
    expect(parseMailFrom(`FROM:<${SENDER}> SMTPUTF8`, { smtputf8: true })).not.toHaveProperty('error');
    expect(parseRcptTo(`TO:<${RECIPIENT}>`, { smtputf8: true })).not.toHaveProperty('error');
  });

  for (const reason of ['failed', 'relayed', 'delayed'] as const) {
    it(`${reason}: no injected line, and non-ASCII text is UTF-8`, async () => {
      const out = await dsn({ reason });
      expect(lineEndsOk(out)).toBe(true);
      const lines = out.toString('latin1').split('\r\n');
      expect(lines.filter((l) => /^X-Injected:/i.test(l))).toEqual([]);
      expect(lines.filter((l) => /^Action: ?delivered/i.test(l))).toEqual([]);
      expect(lines.filter((l) => /^Status: 2\.0\.0/.test(l)).length).toBe(0);
      const text = out.toString('utf8');
      expect(text).toContain(`<${UTF8_RECIPIENT}>`);
      expect(text).toContain('unbekannt: j\u00f6rg');
    });
  }

  it('the original header section is returned byte for byte', async () => {
    const out = await dsn();
    expect(out.includes(Buffer.from('Subject: caf\xe9\r\n', 'latin1'))).toBe(true);
  });

  it('RET=FULL: the whole original message is returned byte for byte', async () => {
    const out = await dsn({ ret: 'FULL' });
    expect(out.includes(ORIGINAL.subarray(0, ORIGINAL.length - 2))).toBe(true);
  });
});
