/**
 * The plugin on bytes (testSession, no socket) against a real DNS server on loopback:
 * the envelope refusal at RCPT, the verdicts after DATA, the headers, tx.data.spam,
 * skipped clients, DNS trouble, hostile messages.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGateway, createLogger, silentLogger } from '@mailgate/core';
import { testSession } from '@mailgate/core/testing';
import { BayesStore, parseContent, spamOptionsSchema, spamPlugin } from '../src/index.js';
import { dataOf, headerOf, message, spamGateway, startSpamDns, testOptions, useDnsFixture } from './helpers.js';

const { dns, path } = useDnsFixture(startSpamDns);

/** One transaction on bytes; returns every reply and what was stored. */
async function transact(
  options: Parameters<typeof testOptions>[0],
  fields: { ip?: string; helo?: string; from?: string; rcpts?: string[]; body?: string; auth?: boolean } = {},
) {
  const { gateway, stored } = await spamGateway(dns.resolver, testOptions(options), { smtp: { authWithoutTls: true } });
  const s = await testSession(gateway, { remoteAddress: fields.ip ?? '192.0.2.10' });
  let out = await s.send(`EHLO ${fields.helo ?? 'client.example'}\r\n`);
  if (fields.auth) out += await s.send(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}\r\n`);
  const rcptReplies: string[] = [];
  out += await s.send(`MAIL FROM:<${fields.from ?? 'ann@spf-pass.example'}>\r\n`);
  for (const rcpt of fields.rcpts ?? ['bob@example.test']) {
    const reply = await s.send(`RCPT TO:<${rcpt}>\r\n`);
    rcptReplies.push(reply);
    out += reply;
  }
  const dataReply = await s.send('DATA\r\n');
  let final = '';
  if (dataReply.startsWith('354')) final = await s.send(dataOf(fields.body ?? message()));
  await s.send('QUIT\r\n');
  await gateway.close();
  return { out, rcptReplies, dataReply, final, stored };
}

describe('options', () => {
  it('refuse a dnsTimeout the core would cut short (pluginTimeout): slow DNS would become 451s', async () => {
    await expect(spamGateway(dns.resolver, testOptions({ dnsTimeout: '30s' }))).rejects.toThrow(/dnsTimeout \(30000 ms\) must be shorter than the gateway's pluginTimeout \(30000 ms\)/);
    const { gateway } = await spamGateway(dns.resolver, testOptions({ dnsTimeout: '30s' }), { pluginTimeout: '45s' });
    await gateway.close();
  });

  it('accept the DESIGN.md example and give safe defaults', () => {
    const o = spamOptionsSchema.parse({ reject: 15, tag: 5, dnsbl: [{ zone: 'zen.example', weight: 4 }] });
    expect(o.tag).toBe(5);
    expect(o.reject).toBe(15);
    expect(o.tempfail).toBeUndefined();
    expect(o.dnsbl).toEqual([expect.objectContaining({ zone: 'zen.example', weight: 4, name: 'zen.example' })]);
    const d = spamOptionsSchema.parse({});
    expect(d).toMatchObject({ tag: 5, reject: 15, maxScanSize: 512 * 1024, skipAuthenticated: true, trustedNetworks: [], dnsbl: [], uribl: [] });
    expect(d.spf).toMatchObject({ enabled: true, rejectFail: false, header: true });
    expect(d.headers).toEqual({ status: true, score: true, flag: true, level: false, report: false, authResults: true, removeExisting: true });
    expect(d.bayes).toBeUndefined();
    expect(spamOptionsSchema.parse({ spf: false }).spf.enabled).toBe(false);
    expect(spamOptionsSchema.parse({ reject: false }).reject).toBe(false);
    expect(spamOptionsSchema.parse({ maxScanSize: '1MB' }).maxScanSize).toBe(1024 * 1024);
  });

  it.each([
    [{ tempfail: 20 }, 'tempfail'],
    [{ tempfail: 3 }, 'tempfail'],
    [{ reject: 4 }, 'reject'],
    [{ trustedNetworks: ['10.0.0.0/33'] }, 'trustedNetworks'],
    [{ trustedNetworks: ['not-an-ip'] }, 'trustedNetworks'],
    [{ dnsbl: [{ zone: 'zen.example' }] }, 'dnsbl'],
    [{ spf: { rejectFial: true } }, 'spf'],
    [{ bayes: { file: '' } }, 'bayes'],
    [{ maxScanSize: 'huge' }, 'maxScanSize'],
    [{ rules: { custom: [{ name: 'BAD', body: true, pattern: '(', score: 1 }] } }, 'rules'],
    [{ colour: 'red' }, ''],
  ])('refuse %j, naming %s', (input, key) => {
    const result = spamOptionsSchema.safeParse(input);
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join('.') || (i as { keys?: string[] }).keys?.join(',') || '');
    expect(paths.some((p) => p.startsWith(key) || (key === '' && p.includes('colour')))).toBe(true);
  });
});

describe('envelope checks at RCPT', () => {
  it('refuse a client whose DNSBL score alone reaches reject, naming the list (postscreen style)', async () => {
    const r = await transact({ dnsbl: [{ zone: 'zen.example', weight: 15 }] }, { ip: '192.0.2.66', rcpts: ['bob@example.test', 'carol@example.test'] });
    for (const reply of r.rcptReplies) expect(reply).toMatch(/^550 5\.7\.1 Service unavailable; client \[192\.0\.2\.66\] blocked using zen\.example\r\n$/);
    expect(r.dataReply).toMatch(/^554/);
    expect(r.stored).toHaveLength(0);
  });

  it('let a listed client through when the envelope score is under reject, and score its message', async () => {
    const r = await transact({}, { ip: '192.0.2.66' });
    expect(r.rcptReplies[0]).toMatch(/^250/);
    expect(r.final).toMatch(/^250 /);
    const spam = r.stored[0]!.spam!;
    expect(spam.tests.map((t) => t.name)).toContain('RCVD_IN_ZEN_EXAMPLE');
    expect(spam.tests.find((t) => t.name === 'RCVD_IN_ZEN_EXAMPLE')).toMatchObject({ score: 4, list: 'zen.example' });
    expect(headerOf(r.stored[0]!.full, 'X-Spam-Status')).toMatch(/^No, score=4\.\d required=5\.0 tests=.*RCVD_IN_ZEN_EXAMPLE/);
  });

  it('look up IPv6 clients by nibbles', async () => {
    const r = await transact({ dnsbl: [{ zone: 'zen.example', weight: 15 }] }, { ip: '2001:db8::66' });
    expect(r.rcptReplies[0]).toMatch(/^550 5\.7\.1 .*blocked using zen\.example/);
  });

  it('subtract DNSWL weights, whatever their sign', async () => {
    const r = await transact({ dnswl: [{ zone: 'wl.example', weight: 3 }], dnsbl: [] }, { ip: '192.0.2.77' });
    const spam = r.stored[0]!.spam!;
    expect(spam.tests.find((t) => t.name === 'RCVD_IN_WL_EXAMPLE')?.score).toBe(-3);
  });

  it('refuse an SPF fail at RCPT with 550 5.7.23 when rejectFail is on', async () => {
    const r = await transact({ spf: { rejectFail: true } }, { ip: '198.51.100.7', from: 'ann@spf-pass.example' });
    expect(r.rcptReplies[0]).toMatch(/^550 5\.7\.23 SPF check failed for spf-pass\.example/);
    expect(r.stored).toHaveLength(0);
  });

  it('only score an SPF fail by default, and add Received-SPF', async () => {
    const r = await transact({}, { ip: '198.51.100.7', from: 'ann@spf-pass.example' });
    expect(r.final).toMatch(/^250 /);
    const full = r.stored[0]!.full;
    expect(headerOf(full, 'Received-SPF')).toMatch(/^fail\b/i);
    expect(r.stored[0]!.spam!.tests.map((t) => t.name)).toContain('SPF_FAIL');
    // The plugin's headers come above the core's Received:
    expect(full.indexOf('Received-SPF:')).toBeLessThan(full.indexOf('\r\nReceived:'));
    expect(full.startsWith('X-Spam-Score:')).toBe(true);
  });

  it('check the HELO identity too, and pass SPF for an allowed client', async () => {
    const r = await transact({}, { ip: '192.0.2.10', helo: 'helo.example' });
    const names = r.stored[0]!.spam!.tests.map((t) => t.name);
    expect(names).toContain('SPF_PASS');
    expect(names).toContain('SPF_HELO_FAIL');
    expect(headerOf(r.stored[0]!.full, 'Received-SPF')).toMatch(/^pass\b/i);
  });

  it('look the sender domain and HELO name up in RHSBLs', async () => {
    const r = await transact({ rhsbl: [{ zone: 'dbl.example', weight: 16 }] }, { from: 'x@mail.spammer.example' });
    expect(r.rcptReplies[0]).toMatch(/^550 5\.7\.1 .*blocked using dbl\.example/);
    const h = await transact({}, { helo: 'mx.spammer.example' });
    expect(h.stored[0]!.spam!.tests.map((t) => t.name)).toContain('RHSBL_HELO_DBL_EXAMPLE');
  });

  it('stop waiting for the lookups when the client leaves during RCPT (the tap signal)', async () => {
    dns.server.set('66.2.0.192.tarpit.example', { A: ['127.0.0.2'], delayMs: 5_000 });
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: 'debug', format: 'json', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    // dnsTimeout and pluginTimeout far above the 5 s answer: only the signal can end the wait early
    const gateway = createGateway({ hostname: 'mx.test', pluginTimeout: '90s' }, { logger, dns: dns.resolver });
    await gateway.use(spamPlugin, testOptions({ dnsbl: [{ zone: 'tarpit.example', weight: 20 }], dnsTimeout: '60s' }));
    const s = await testSession(gateway, { remoteAddress: '192.0.2.66' });
    await s.send('EHLO client.example\r\nMAIL FROM:<ann@spf-pass.example>\r\n');
    s.session.feed(Buffer.from('RCPT TO:<bob@example.test>\r\n'));
    await s.end();
    // Wait for the log line, not for a time: without the signal it would come only after the 5 s answer.
    const aborted = () => lines.find((l) => l.msg === 'plugin aborted' && l.plugin === '@mailgate/plugin-spam' && l.hook === 'rcpt');
    for (let i = 0; i < 200 && !aborted(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(aborted()).toBeDefined();
    expect(Number(aborted()!.ms)).toBeLessThan(5_000);
    await gateway.close();
  });

  it('never reject for DNS timeouts: the points are only lost', async () => {
    const r = await transact({ dnsbl: [{ zone: 'slow.example', weight: 20 }] }, { ip: '192.0.2.66' });
    expect(r.rcptReplies[0]).toMatch(/^250/);
    expect(r.final).toMatch(/^250 /);
    expect(r.stored[0]!.spam!.tests.map((t) => t.name)).not.toContain('RCVD_IN_SLOW_EXAMPLE');
  });
});

describe('after DATA', () => {
  it('tag at tag: X-Spam-Flag, X-Spam-Score, X-Spam-Status, and tx.data.spam', async () => {
    const r = await transact({ headers: { report: true, level: true } }, { body: message({ body: 'buy cheap-pills here' }) });
    expect(r.final).toMatch(/^250 /);
    const { full, spam } = r.stored[0]!;
    expect(spam).toMatchObject({ flagged: true, action: 'tag', contentChecked: true });
    expect(spam!.score).toBeGreaterThanOrEqual(6);
    expect(headerOf(full, 'X-Spam-Flag')).toBe('YES');
    expect(headerOf(full, 'X-Spam-Score')).toBe(spam!.score.toFixed(1));
    expect(headerOf(full, 'X-Spam-Level')).toBe('*'.repeat(Math.floor(spam!.score)));
    expect(headerOf(full, 'X-Spam-Status')).toMatch(/^Yes, score=\d+\.\d required=5\.0 tests=.*TEST_SPAMMY/);
    expect(headerOf(full, 'X-Spam-Report')).toMatch(/\* +6\.0 TEST_SPAMMY Sells cheap pills/);
  });

  it("remove the sender's X-Spam-* fields and Authentication-Results claiming to be ours (RFC 8601 §5), keep others'", async () => {
    const forged = [
      'X-Spam-Status: No, score=-9.9 required=5.0',
      'X-Spam-Flag: NO',
      'x-spam-score:\r\n -9.9',
      'Authentication-Results: MX.test; dkim=pass header.d=bank.example',
      'Authentication-Results: mx.other.example; spf=fail smtp.mailfrom=x@y.example',
    ];
    const r = await transact({ headers: { report: true, level: true } }, { body: message({ body: 'buy cheap-pills here', headers: forged }) });
    expect(r.final).toMatch(/^250 /);
    const full = r.stored[0]!.full;
    const head = full.slice(0, full.indexOf('\r\n\r\n') + 2).replace(/\r\n[ \t]/g, ' ');
    const fields = (name: string) => head.split('\r\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    expect(fields('X-Spam-Status')).toEqual([expect.stringMatching(/^X-Spam-Status: Yes, score=/)]);
    expect(fields('X-Spam-Flag')).toEqual(['X-Spam-Flag: YES']);
    expect(fields('X-Spam-Score')).toHaveLength(1);
    expect(fields('Authentication-Results').map((l) => l.split(';')[0])).toEqual(['Authentication-Results: mx.test', 'Authentication-Results: mx.other.example']);
    expect(head).not.toContain('bank.example');
    // the body and the rest of the header block are as sent
    expect(full.endsWith('\r\n\r\nbuy cheap-pills here\r\n')).toBe(true);
    expect(head).toContain('Message-ID: <test-1@spf-pass.example>');
  });

  it('leave the fields in place with headers.removeExisting: false', async () => {
    const r = await transact({ headers: { removeExisting: false } }, { body: message({ headers: ['X-Spam-Flag: NO'] }) });
    expect(r.stored[0]!.full).toContain('\r\nX-Spam-Flag: NO\r\n');
  });

  it('leave a clean message untagged but with its status', async () => {
    const r = await transact({});
    const { full, spam } = r.stored[0]!;
    expect(spam).toMatchObject({ flagged: false, action: 'accept' });
    expect(headerOf(full, 'X-Spam-Flag')).toBeUndefined();
    expect(headerOf(full, 'X-Spam-Status')).toMatch(/^No, score=/);
  });

  it('refuse at reject with 550 5.7.1 and store nothing', async () => {
    const r = await transact({ rejectMessage: 'Go away' }, { body: message({ subject: 'WINNER of a prize' }) });
    expect(r.final).toMatch(/^550 5\.7\.1 Go away\r\n$/);
    expect(r.stored).toHaveLength(0);
  });

  it('tempfail in the tempfail band with 451 4.7.1', async () => {
    const r = await transact({ tempfail: 10 }, { body: message({ body: 'wire-transfer-now please' }) });
    expect(r.final).toMatch(/^451 4\.7\.1 /);
    expect(r.stored).toHaveLength(0);
  });

  it('look URL domains up in URI blocklists and the From: domain in RHSBLs, each list once', async () => {
    const body = 'see http://www.spam-link.example/a and https://spam-link.example/b and http://fine.example/';
    const r = await transact({}, { body: message({ body, from: 'Bad <x@spammer.example>' }) });
    const tests = r.stored[0]!.spam!.tests;
    expect(tests.filter((t) => t.name === 'URIBL_URIBL_EXAMPLE')).toHaveLength(1);
    expect(tests.find((t) => t.name === 'URIBL_URIBL_EXAMPLE')!.score).toBe(2.5);
    expect(tests.map((t) => t.name)).toContain('RHSBL_FROM_DBL_EXAMPLE');
  });

  it('run the default rules when asked (MISSING_DATE)', async () => {
    const r = await transact({ rules: {} }, { body: message({ date: false }) });
    expect(r.stored[0]!.spam!.tests.map((t) => t.name)).toContain('MISSING_DATE');
  });

  it('skip content checks over maxScanSize, keeping the envelope checks', async () => {
    const big = message({ body: `cheap-pills\n${'x'.repeat(100)}\n`.repeat(200) });
    const r = await transact({ maxScanSize: '8KB' }, { ip: '192.0.2.66', body: big });
    expect(r.final).toMatch(/^250 /);
    const spam = r.stored[0]!.spam!;
    expect(spam.contentChecked).toBe(false);
    expect(spam.tests.map((t) => t.name)).toEqual(expect.arrayContaining(['RCVD_IN_ZEN_EXAMPLE']));
    expect(spam.tests.map((t) => t.name)).not.toContain('TEST_SPAMMY');
  });

  it('never throw on hostile messages', async () => {
    const hostile = [
      `Subject: ${'=?utf-8?B?'.repeat(2000)}\r\n\r\n\u0000\u0001binary`,
      `${'X-A: b\r\n'.repeat(10_000)}\r\nbody`,
      `Content-Type: multipart/mixed; boundary=a\r\n\r\n${'--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n'.repeat(500)}`,
      'no headers at all',
    ];
    for (const body of hostile) {
      const r = await transact({}, { body: body + '\r\n' });
      expect(r.final).toMatch(/^250 /);
      expect(r.stored[0]!.spam!.contentChecked).toBe(true);
    }
  });
});

describe('who is not scored', () => {
  it('an authenticated client (skipAuthenticated)', async () => {
    const r = await transact({ dnsbl: [{ zone: 'zen.example', weight: 20 }] }, { ip: '192.0.2.66', auth: true, body: message({ subject: 'WINNER' }) });
    expect(r.final).toMatch(/^250 /);
    expect(r.stored[0]!.spam).toMatchObject({ skipped: 'authenticated', score: 0, action: 'accept' });
    expect(headerOf(r.stored[0]!.full, 'X-Spam-Status')).toBeUndefined();
  });

  it('an authenticated client when skipAuthenticated is off is scored', async () => {
    const r = await transact({ skipAuthenticated: false }, { auth: true, body: message({ subject: 'WINNER' }) });
    expect(r.final).toMatch(/^550 5\.7\.1/);
  });

  it('a client in trustedNetworks, and no lookup is made for it', async () => {
    const before = dns.server.queries.length;
    const r = await transact({ dnsbl: [{ zone: 'zen.example', weight: 20 }], trustedNetworks: ['192.0.2.0/25'] }, { ip: '192.0.2.66', body: message({ subject: 'WINNER' }) });
    expect(r.final).toMatch(/^250 /);
    expect(r.stored[0]!.spam).toMatchObject({ skipped: 'trusted' });
    expect(dns.server.queries.slice(before).filter((q) => q.name.includes('zen.example'))).toHaveLength(0);
  });
});

describe('Bayes', () => {
  it('score BAYES_* bands once enough was learned, and not before', async () => {
    const file = path('bayes.db');
    const store = await BayesStore.open(file, { minSpam: 3, minHam: 3 });
    const spams = ['cheap meds online pharmacy discount viagra', 'casino bonus free spins jackpot winner', 'pharmacy discount pills cheap meds order now'];
    const hams = ['the quarterly report is attached for review', 'lunch meeting agenda project status update', 'code review comments for the release branch'];
    for (const text of spams) store.learn(await parseContent(Buffer.from(message({ body: text, subject: text }))), 'spam');
    for (const text of hams.slice(0, 2)) store.learn(await parseContent(Buffer.from(message({ body: text, subject: text }))), 'ham');
    await store.save();
    const options = { bayes: { file, minSpam: 3, minHam: 3 } };
    const early = await transact(options, { body: message({ body: 'cheap meds pharmacy discount viagra', subject: 'cheap meds' }) });
    expect(early.stored[0]!.spam!.tests.some((t) => t.name.startsWith('BAYES_'))).toBe(false);
    store.learn(await parseContent(Buffer.from(message({ body: hams[2]!, subject: hams[2]! }))), 'ham');
    await store.save();
    const r = await transact(options, { body: message({ body: 'cheap meds pharmacy discount viagra', subject: 'cheap meds' }) });
    const bayes = r.stored[0]!.spam!.tests.filter((t) => t.name.startsWith('BAYES_'));
    expect(bayes.length).toBeGreaterThan(0);
    expect(bayes[0]!.name).toMatch(/^BAYES_(60|80|95|99)$/);
  });

  it('a corrupt Bayes file is a start-up error naming the option', async () => {
    const file = path('corrupt.db');
    await (await import('node:fs/promises')).writeFile(file, 'this is not a bayes database\n\u0000');
    const gateway = createGateway({ hostname: 'mx.test' }, { logger: silentLogger, dns: dns.resolver });
    await expect(gateway.use(spamPlugin, { bayes: { file } })).rejects.toThrow(/bayes\.file/);
    await gateway.close();
  });
});
