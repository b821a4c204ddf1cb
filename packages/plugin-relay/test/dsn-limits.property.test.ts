/**
 * Size limits of the DSN (found by property testing): the core's buildDeliveryReport
 * fed next hops' replies as the relay's SMTP client keeps them (oneLine):
 *
 * - RFC 5322 §2.1.1 / RFC 5321 §4.5.3.1.6: a line is at most 998 octets before CRLF.
 *   A next hop's reply reaches the report through the SMTP client's oneLine() (at most
 *   1000 characters) and is written unfolded into "Diagnostic-Code: smtp; …" and into the
 *   notice's "<rcpt>: …" line, so a long (e.g. multi-line, joined) rejection gives lines
 *   over 998 octets, which receiving MTAs may refuse or cut.
 * - RFC 2046 §5.1.1: a boundary is 1 to 70 characters. Ours is
 *   `<bounceId>/<hostname>/<12 hex>`, 31 characters plus the host name, so any host name
 *   longer than 39 characters gives an invalid boundary.
 */
import fc from 'fast-check';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDeliveryReport } from '@mailgate/core';
import { oneLine } from '../src/client.js';
import { newQueueId } from '../src/store.js';
import { useScratchDir } from './scratch.js';

const scratch = useScratchDir('mg-dsn-limits-');
beforeAll(async () => {
  await writeFile(join(scratch.dir, 'm.eml'), 'Subject: x\r\n\r\nbody\r\n');
});

const dsn = (hostname: string, diagnostic: string) =>
  buildDeliveryReport({
    hostname,
    queueId: newQueueId(),
    reportId: newQueueId(),
    to: 'sender@example.test',
    originalSender: 'sender@example.test',
    arrival: new Date(),
    recipients: [{ address: 'rcpt@dest.test', status: '5.7.1', diagnostic }],
    reason: 'failed',
    doubleBounce: false,
    original: join(scratch.dir, 'm.eml'),
  });

describe('DSN size limits', () => {
  it('no line over 998 octets, whatever the next hop replied', async () => {
    // a reply of any length (a long multi-line one, joined), in ASCII or not
    const reply = fc
      .tuple(fc.constantFrom('550 5.7.1 ', '554 '), fc.integer({ min: 0, max: 1200 }), fc.constantFrom('x', 'policy text\n', 'é', '\u{1F600}'))
      .map(([code, n, piece]) => oneLine(code + piece.repeat(n)));
    await fc.assert(
      fc.asyncProperty(reply, async (diagnostic) => {
        const lines = (await dsn('mx.example.test', diagnostic)).toString('latin1').split('\r\n');
        for (const line of lines) expect(line.length, line.slice(0, 40)).toBeLessThanOrEqual(998);
      }),
      { numRuns: 200 },
    );
  });

  it('the multipart boundary is at most 70 characters (RFC 2046), whatever the host name', async () => {
    const hostname = fc.array(fc.stringMatching(/^[a-z0-9]{1,30}$/), { minLength: 1, maxLength: 8 }).map((labels) => `${labels.join('.')}.test`);
    await fc.assert(
      fc.asyncProperty(hostname, async (hostname) => {
        const boundary = /boundary="([^"]*)"/.exec((await dsn(hostname, '550 no')).toString('latin1'))![1]!;
        expect(boundary.length).toBeGreaterThanOrEqual(1);
        expect(boundary.length).toBeLessThanOrEqual(70);
      }),
      { numRuns: 200 },
    );
  });

  it('regressions: the minimal counterexamples', async () => {
    const long = `550 5.7.1 ${'x'.repeat(966)}`; // 976 characters: "Diagnostic-Code: smtp; " (23) makes the line 999
    const text = (await dsn('mx.example.test', long)).toString('latin1');
    expect(Math.max(...text.split('\r\n').map((l) => l.length))).toBeLessThanOrEqual(998);
    const host = `${'a'.repeat(36)}.com`; // 40 characters
    const boundary = /boundary="([^"]*)"/.exec((await dsn(host, '550 no')).toString('latin1'))![1]!;
    expect(boundary.length).toBeLessThanOrEqual(70);
  });
});
