/**
 * Messages built to burn the scanner's CPU: regular expressions that are tried at every
 * position of a long run and scan the whole run each time (quadratic). Each message is
 * under maxScanSize, so it is scanned; before the fixes each one held the event loop for
 * minutes (the whole gateway, every session, stood still). After them each takes
 * milliseconds: the tests' own timeout is far above that and far below the old cost.
 */
import { describe, expect, it } from 'vitest';
import { testSession } from '@mailgate/core/testing';
import { parseContent, tokenize } from '../src/index.js';
import { receivedAt } from '../src/checks.js';
import { dataOf, message, spamGateway, startSpamDns, testOptions, useDnsFixture } from './helpers.js';

const { dns, path } = useDnsFixture(startSpamDns);

/** 400 000 characters: quadratic work on it is ~10^11 steps, linear work a millisecond. */
const RUN = 400_000;
/** In a header: the core refuses a header section over 256 KiB (552) before any plugin; 200 000 is still ~10^10 steps when quadratic. */
const HEADER_RUN = 200_000;

/** One message through a gateway with every content check on (Bayes classifies from the first message). */
async function scan(raw: string) {
  const options = testOptions({ rules: {}, bayes: { file: path('bayes.db'), minSpam: 0, minHam: 0 } });
  const { gateway, stored } = await spamGateway(dns.resolver, options);
  const s = await testSession(gateway, { remoteAddress: '192.0.2.10' });
  await s.send('EHLO client.example\r\nMAIL FROM:<ann@spf-pass.example>\r\nRCPT TO:<bob@example.test>\r\n');
  expect(await s.send('DATA\r\n')).toMatch(/^354/);
  const final = await s.send(dataOf(raw));
  await s.send('QUIT\r\n');
  await gateway.close();
  return { final, spam: stored[0]?.spam };
}

describe('hostile content does not stall the gateway', () => {
  it('a link followed by a long run of dots (URL trailing-punctuation trim)', async () => {
    const r = await scan(message({ body: `see http://a.example/${'.'.repeat(RUN)}x` }));
    expect(r.final).toMatch(/^250 /);
    expect(r.spam!.contentChecked).toBe(true);
  }, 20_000);

  it('the same inside an HTML part', async () => {
    const html = `<html><body><p>http://a.example/${'.'.repeat(RUN)}x</p></body></html>`;
    const r = await scan(message({ headers: ['Content-Type: text/html'], body: html }));
    expect(r.final).toMatch(/^250 /);
    expect(r.spam!.contentChecked).toBe(true);
  }, 20_000);

  it('a From: header of 200 000 address characters (Bayes tokenizer address search)', async () => {
    const r = await scan(message({ from: 'a'.repeat(HEADER_RUN) }));
    expect(r.final).toMatch(/^250 /);
    expect(r.spam!.contentChecked).toBe(true);
  }, 20_000);

  it('Cc:, Reply-To:, Sender: and Return-Path: of 50 000 characters each', async () => {
    const long = 'b'.repeat(HEADER_RUN / 4);
    const r = await scan(message({ headers: [`Cc: ${long}`, `Reply-To: ${long}`, `Sender: ${long}`, `Return-Path: ${long}`] }));
    expect(r.final).toMatch(/^250 /);
  }, 20_000);

  it('a body "word" of dots between two letters (Bayes tokenizer edge punctuation)', async () => {
    const content = await parseContent(Buffer.from(message({ body: `x${'.'.repeat(RUN)}x` })));
    // The gateway reads 100 000 characters of text; a larger budget makes the old cost unmistakable.
    const tokens = tokenize(content, { maxTextChars: 1_000_000 });
    expect(tokens).toContain(`skip:x ${RUN}`);
  }, 20_000);

  it('keeps the tokens of ordinary words as they were', async () => {
    const content = await parseContent(Buffer.from(message({ body: "...hello!! 'quoted' -dash- path/ a!. ?!wow!?" })));
    const tokens = tokenize(content);
    expect(tokens).toEqual(expect.arrayContaining(['hello!!', 'quoted', 'dash', 'path', 'wow!']));
  });

  it('a Received: date of 400 000 " (" (spam check --received dating)', async () => {
    const content = await parseContent(Buffer.from(`Received: from a by b; ${' ('.repeat(RUN / 2)}x\r\nSubject: x\r\n\r\nhi\r\n`));
    expect(receivedAt(content)).toBeUndefined();
    const ok = await parseContent(Buffer.from('Received: from a by b; Tue, 1 Oct 2002 10:00:00 +0000 (UTC)\r\n\r\nhi\r\n'));
    expect(receivedAt(ok)).toBe(Date.UTC(2002, 9, 1, 10));
  }, 20_000);
});
