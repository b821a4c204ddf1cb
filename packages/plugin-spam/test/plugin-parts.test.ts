/**
 * The plugin's own small parts: points and bands, the X-Spam headers (format, folding,
 * nothing injected), trusted networks, the Bayes file reload, the one log line per
 * message.
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createGateway, createLogger, silentLogger } from '@mailgate/core';
import { testSession } from '@mailgate/core/testing';
import { BayesFile } from '../src/bayes-file.js';
import { spamHeaders } from '../src/headers.js';
import { cidrError, NetworkList } from '../src/networks.js';
import { readStreamHead } from '../src/read-head.js';
import { bayesTests, decideAction, DEFAULT_BAYES_SCORES, formatScore, spfTest, DEFAULT_SPF_SCORES, testName, totalScore } from '../src/score.js';
import { BayesStore, parseContent, spamPlugin } from '../src/index.js';
import { captureStorage, dataOf, message, startSpamDns, testOptions, useDnsFixture } from './helpers.js';

describe('points', () => {
  it('Bayes bands as SpamAssassin names them, BAYES_999 on top of BAYES_99', () => {
    const names = (p: number) => bayesTests(p, DEFAULT_BAYES_SCORES).map((t) => t.name);
    expect(names(0)).toEqual(['BAYES_00']);
    expect(names(0.0099)).toEqual(['BAYES_00']);
    expect(names(0.01)).toEqual(['BAYES_05']);
    expect(names(0.5)).toEqual(['BAYES_50']);
    expect(names(0.97)).toEqual(['BAYES_95']);
    expect(names(0.995)).toEqual(['BAYES_99']);
    expect(names(1)).toEqual(['BAYES_99', 'BAYES_999']);
    expect(names(Number.NaN)).toEqual([]);
    expect(bayesTests(1, DEFAULT_BAYES_SCORES).reduce((s, t) => s + t.score, 0)).toBeCloseTo(5);
  });

  it('SPF tests per result and identity', () => {
    expect(spfTest('fail', 'mailfrom', DEFAULT_SPF_SCORES, 'a.example')).toMatchObject({ name: 'SPF_FAIL', score: 0.919 });
    expect(spfTest('softfail', 'helo', DEFAULT_SPF_SCORES, 'a.example')?.name).toBe('SPF_HELO_SOFTFAIL');
    expect(spfTest('bogus', 'helo', DEFAULT_SPF_SCORES, 'a.example')).toBeUndefined();
  });

  it('totals, actions and names', () => {
    const t = (score: number) => ({ name: 'X', score, describe: '' });
    expect(totalScore([t(0.1), t(0.2), t(14.7)])).toBe(15);
    expect(totalScore([t(Number.NaN), t(1)])).toBe(1);
    const thresholds = { tag: 5, reject: 15 as number | false, tempfail: 10 };
    expect([4.9, 5, 9.99, 10, 15].map((s) => decideAction(s, thresholds))).toEqual(['accept', 'tag', 'tag', 'tempfail', 'reject']);
    expect(decideAction(1000, { tag: 5, reject: false })).toBe('tag');
    expect(formatScore(-0.001)).toBe('0.0');
    expect(formatScore(-1.9)).toBe('-1.9');
    expect(testName('RCVD_IN', 'zen.spamhaus.org')).toBe('RCVD_IN_ZEN_SPAMHAUS_ORG');
    expect(testName('x'.repeat(100))).toHaveLength(40);
  });
});

describe('X-Spam headers', () => {
  it('in SpamAssassin formats, folded after commas, lines at most 78 characters', () => {
    const tests = Array.from({ length: 30 }, (_, i) => ({ name: `SOME_LONG_RULE_NAME_${i}`, score: i / 10, describe: `rule number ${i}` }));
    const headers = spamHeaders({ score: 43.5, tests, flagged: true }, 5, { status: true, score: true, flag: true, level: true, report: true });
    expect(headers.map((h) => h.name)).toEqual(['X-Spam-Flag', 'X-Spam-Score', 'X-Spam-Level', 'X-Spam-Status', 'X-Spam-Report']);
    expect(headers[2]!.value).toBe('*'.repeat(43));
    for (const h of headers) {
      for (const line of `${h.name}: ${h.value}`.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
      expect(h.value).not.toMatch(/\r\n(?![\t])/);
    }
    expect(headers[3]!.value.replace(/\r\n\t/g, '')).toBe(`Yes, score=43.5 required=5.0 tests=${tests.map((t) => t.name).sort().join(',')}`);
  });

  it('never carry CR, LF or 8-bit text from descriptions', () => {
    const evil = { name: 'EVIL\r\nBcc: x', score: 1, describe: 'line\r\nX-Injected: yes\u0000 caf\u00e9' };
    const [report] = spamHeaders({ score: 1, tests: [evil], flagged: false }, 5, { status: false, score: false, flag: false, level: false, report: true });
    expect(report!.value).not.toMatch(/\r\n(?!\t)/);
    expect(report!.value).not.toMatch(/[^\x20-\x7e\r\n\t]/);
    expect(report!.value).toContain('EVIL__Bcc__x');
  });
});

describe('trusted networks', () => {
  it('match IPv4, IPv6 and IPv4-mapped clients', () => {
    const list = new NetworkList(['192.0.2.0/24', '2001:db8::/32', '198.51.100.7']);
    expect(list.has('192.0.2.200')).toBe(true);
    expect(list.has('::ffff:192.0.2.1')).toBe(true);
    expect(list.has('2001:db8:1::1')).toBe(true);
    expect(list.has('198.51.100.7')).toBe(true);
    expect(list.has('198.51.100.8')).toBe(false);
    expect(list.has('garbage')).toBe(false);
    expect(new NetworkList([]).has('192.0.2.1')).toBe(false);
    expect(cidrError('10.0.0.0/8')).toBeUndefined();
    expect(cidrError('10.0.0.0/x')).toMatch(/prefix length/);
    expect(cidrError('::/129')).toMatch(/0\.\.128/);
    expect(cidrError(' 10.0.0.0/8')).toMatch(/expected an IP address/);
  });

  it('treat an IPv4 client as its mapped IPv6 form too: ::/0 trusts everyone', () => {
    expect(new NetworkList(['::/0']).has('192.0.2.1')).toBe(true);
    expect(new NetworkList(['::ffff:192.0.2.0/120']).has('192.0.2.1')).toBe(true);
    expect(new NetworkList(['0.0.0.0/0']).has('::1')).toBe(false);
    expect(new NetworkList(['2001:db8::/32']).has('192.0.2.1')).toBe(false);
  });
});

describe('reading heads', () => {
  it('read no more than asked and stop the stream', async () => {
    let pulled = 0;
    const stream = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) {
          pulled++;
          yield Buffer.alloc(64 * 1024, 0x61);
        }
      })(),
    );
    const { bytes, truncated } = await readStreamHead(stream, 100_000);
    expect(bytes.length).toBe(100_000);
    expect(truncated).toBe(true);
    expect(pulled).toBeLessThan(10);
    expect(stream.destroyed).toBe(true);
  });
});

describe('with a gateway', () => {
  const { dns, path } = useDnsFixture(startSpamDns);

  it('log one structured line per message: score, tests, action', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json', write: (line) => lines.push(line) });
    const gateway = createGateway({ hostname: 'mx.test' }, { logger, dns: dns.resolver });
    await gateway.use(spamPlugin, testOptions());
    await gateway.use(captureStorage().plugin);
    const s = await testSession(gateway, { remoteAddress: '192.0.2.66' });
    await s.send('EHLO client.example\r\nMAIL FROM:<ann@spf-pass.example>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n');
    expect(await s.send(dataOf(message({ body: 'cheap-pills' })))).toMatch(/^250 /);
    await gateway.close();
    const scanned = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'spam: scanned');
    expect(scanned).toHaveLength(1);
    expect(scanned[0]).toMatchObject({ action: 'tag', client: '192.0.2.66', contentChecked: true });
    expect(scanned[0]!.score).toBeCloseTo(4 + 6 - 0.001 + 0.001, 3);
    expect(scanned[0]!.tests).toBe('RCVD_IN_ZEN_EXAMPLE=4.0,SPF_PASS=0.0,SPF_HELO_NONE=0.0,TEST_SPAMMY=6.0');
  });

  it('a running gateway picks up a retrained Bayes file', async () => {
    const file = path('reload.db');
    const handle = await BayesFile.open(file, { reloadInterval: 0, log: silentLogger, store: { minSpam: 1, minHam: 1 } });
    expect((await handle.current()).spamCount).toBe(0);
    const trainer = await BayesStore.open(file, { minSpam: 1, minHam: 1 });
    trainer.learn(await parseContent(Buffer.from(message({ body: 'cheap meds' }))), 'spam');
    trainer.learn(await parseContent(Buffer.from(message({ body: 'team meeting' }))), 'ham');
    await trainer.save();
    await handle.current();
    await handle.settled();
    expect((await handle.current()).spamCount).toBe(1);
  });
});
