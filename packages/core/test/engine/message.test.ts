/**
 * The queued message: bytes equal Received header + body exactly; the Received header
 * is well formed (RFC 5321 §4.4, RFC 3848 keywords, `for` only with one recipient);
 * large bodies go to a spool file that can be streamed twice and is removed after the
 * transaction, whatever its outcome; headers() parses lazily.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accept, createGateway, reject, silentLogger, type Message } from '../../src/index.js';
import { testSession } from '../../src/testing/index.js';
import { GO_AHEAD, OK_MAIL, OK_RCPT, QUEUED, envelope, lines, makeGateway, plugin, readAll, ready, sleep, splitReceived, storePlugin, tmpDir } from './helpers.js';

const DATE = /(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}/;

async function storeSetup(config: Parameters<typeof makeGateway>[0] = {}) {
  const gw = makeGateway(config);
  const store = storePlugin('store', { domains: ['example.test'] });
  await gw.use(store.plugin);
  return { gw, stored: store.stored };
}

/** Wait until the spool directory is empty (unlinks are awaited, but be lenient with the fs). */
async function spoolFiles(gw: { spool: { options: { dir: string } } }): Promise<string[]> {
  const dir = gw.spool.options.dir;
  for (let i = 0; i < 50; i++) {
    if (!existsSync(dir) || readdirSync(dir).length === 0) return [];
    await sleep(10);
  }
  return readdirSync(dir);
}

describe('queued bytes', () => {
  it('are exactly the Received header followed by the body as sent (unstuffed)', async () => {
    const { gw, stored } = await storeSetup();
    const s = await ready(gw, { id: 'M1' });
    const bodyLines = ['From: a@b.test', 'To: x@example.test', 'Subject: exact', '', 'Hello,', '..stuffed', '', 'bye'];
    expect(await s.send(envelope('a@b.test', 'x@example.test') + lines(...bodyLines) + '.\r\n')).toBe(
      OK_MAIL + OK_RCPT + GO_AHEAD + '250 2.0.0 OK: queued as M1.1\r\n',
    );
    const m = stored[0]!;
    const { received, rest } = splitReceived(m.bytes);
    expect(rest.toString()).toBe(lines(...bodyLines.map((l) => (l === '..stuffed' ? '.stuffed' : l))));
    expect(received).toMatch(
      new RegExp(
        '^Received: from c\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n' +
          '\\tby mx\\.test \\(Mailgate\\) with ESMTP id M1\\.1\\r\\n' +
          '\\tfor <x@example\\.test>;\\r\\n' +
          `\\t${DATE.source}\\r\\n$`,
      ),
    );
    expect(m.bytesAgain.equals(m.bytes)).toBe(true);
    expect(m.from).toBe('a@b.test');
  });

  it('no `for` clause with several recipients (a Bcc list is not disclosed)', async () => {
    const { gw, stored } = await storeSetup();
    const s = await ready(gw, { id: 'M2' });
    await s.send(envelope('a@b.test', 'x@example.test', 'y@example.test') + 'hi\r\n.\r\n');
    const { received } = splitReceived(stored[0]!.bytes);
    expect(received).not.toContain('for <');
    expect(received).toMatch(/with ESMTP id M2\.1;\r\n\t/);
  });

  it.each([
    ['HELO', {}, 'HELO c.test', '', 'SMTP'],
    ['EHLO', {}, 'EHLO c.test', '', 'ESMTP'],
    ['SMTPUTF8', {}, 'EHLO c.test', ' SMTPUTF8', 'UTF8SMTP'],
    ['implicit TLS', { tls: { protocol: 'TLSv1.3', cipher: 'x', implicit: true } }, 'EHLO c.test', '', 'ESMTPS'],
  ])('protocol keyword for %s', async (_w, peer, greet, mailParam, keyword) => {
    const { gw, stored } = await storeSetup();
    const s = await testSession(gw, peer);
    await s.send(`${greet}\r\n`);
    expect(await s.send(lines(`MAIL FROM:<a@b.test>${mailParam}`, 'RCPT TO:<x@example.test>', 'DATA', 'hi', '.'))).toMatch(/queued/);
    expect(splitReceived(stored[0]!.bytes).received).toContain(` with ${keyword} id `);
  });

  it('an IPv6 peer is written as an IPv6 address literal; a hostile HELO name is neutralised', async () => {
    const { gw, stored } = await storeSetup();
    const s = await testSession(gw, { remoteAddress: '2001:db8::25' });
    await s.send('EHLO evil;(by)<x>\\\r\n');
    await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'DATA', 'hi', '.'));
    const { received } = splitReceived(stored[0]!.bytes);
    expect(received.startsWith('Received: from evil??by??x?? ([IPv6:2001:db8::25])\r\n')).toBe(true);
    expect(received.split(';')).toHaveLength(2);
  });

  it('the message size counts the prepended headers; headers() parses them with the body headers', async () => {
    const gw = makeGateway();
    let message: Message | undefined;
    let first: unknown;
    let second: unknown;
    let afterPrepend: readonly { name: string }[] = [];
    await gw.use(
      plugin('peek', ({ tap }) => {
        tap('rcpt', (_s, _tx, r) => (r.address.domain === 'example.test' ? accept() : undefined));
        tap('queue', async (_s, tx) => {
          message = tx.message!;
          first = await message.headers();
          second = await message.headers();
          message.prependHeader('X-Later', 'yes');
          afterPrepend = await message.headers();
        });
      }),
    );
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test') + lines('Subject: lazy', 'X-Folded: a', ' b', '', 'Body: not a header', '.'));
    expect(first).toBe(second); // parsed once, cached
    expect(afterPrepend).not.toBe(first); // re-parsed after a change
    expect(afterPrepend.map((h) => h.name)).toEqual(['X-Later', 'Received', 'Subject', 'X-Folded']);
    expect(await message!.header('x-folded')).toBe('a b');
    expect(await message!.header('Body')).toBeUndefined();
    expect(message!.size).toBe(message!.addedHeaders.join('').length + message!.bodySize);
  });
});

describe('spool', () => {
  it('a small body stays in memory (no spool file)', async () => {
    const { gw, stored } = await storeSetup();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test') + 'hi\r\n.\r\n');
    expect(stored[0]!.spoolPath).toBeUndefined();
    expect(await spoolFiles(gw)).toEqual([]);
  });

  it('a 3 MB body goes to a spool file, is read twice independently, and the file is removed afterwards', async () => {
    const { gw, stored } = await storeSetup();
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test'))).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    const line = (i: number): string => `${String(i).padStart(7, '0')} ${'abcdefghijklmnopqrstuvwxyz'.repeat(3)}\r\n`;
    const body = ['Subject: big', '', ''].join('\r\n') + Array.from({ length: 35_000 }, (_, i) => line(i)).join('');
    expect(body.length).toBeGreaterThan(3_000_000);
    // Sent in 64 KB pieces like a socket would.
    const wire = Buffer.from(body + '.\r\n');
    let out = '';
    for (let i = 0; i < wire.length; i += 65536) out += await s.send(wire.subarray(i, i + 65536));
    expect(out).toMatch(QUEUED);
    const m = stored[0]!;
    expect(m.spoolPath).toBeDefined();
    expect(m.spoolFileExisted).toBe(true);
    expect(splitReceived(m.bytes).rest.toString()).toBe(body);
    expect(m.bytesAgain.equals(m.bytes)).toBe(true);
    expect(m.headers.map((h) => [h.name, h.value])).toEqual([
      ['Received', expect.stringMatching(/^from c\.test/)],
      ['Subject', 'big'],
    ]);
    expect(existsSync(m.spoolPath!)).toBe(false);
    expect(await spoolFiles(gw)).toEqual([]);
  });

  it.each([
    ['refused by a data tap', 'data-reject'],
    ['failed at queue', 'queue-fail'],
    ['too big', 'too-big'],
    ['cut by the peer during DATA', 'drop'],
    ['cut by the peer during BDAT', 'drop-bdat'],
    ['abandoned with RSET during BDAT', 'rset-bdat'],
    ['refused for a bare LF', 'bare-lf'],
  ])('no spool file is left when the message is %s', async (_w, how) => {
    const gw = makeGateway({ spool: { memoryThreshold: 1024 }, limits: { maxMessageSize: how === 'too-big' ? 50_000 : '1MB' } });
    const store = storePlugin('store', { domains: ['example.test'], ...(how === 'queue-fail' ? { fail: 'throw' as const } : {}) });
    if (how === 'data-reject') await gw.use(plugin('judge', ({ tap }) => tap('data', () => reject())));
    await gw.use(store.plugin);
    const s = await ready(gw);
    const big = 'z'.repeat(70) + '\r\n';
    if (how === 'drop-bdat' || how === 'rset-bdat') {
      const chunk = big.repeat(100);
      await s.send(`MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nBDAT ${chunk.length}\r\n${chunk}`);
      if (how === 'rset-bdat') expect(await s.send('RSET\r\n')).toBe('250 2.0.0 OK\r\n');
    } else {
      await s.send(envelope('a@b.test', 'x@example.test'));
      await s.send(big.repeat(how === 'too-big' ? 1000 : 100) + (how === 'bare-lf' ? 'x\ny\r\n' : ''));
      if (how !== 'drop') expect(await s.send('.\r\n')).toMatch(/^(451|550|552|554) /);
    }
    await sleep(20); // let the spool file open, so a late open cannot outlive the cleanup
    if (how.startsWith('drop')) await s.end();
    expect(store.stored.every((m) => !existsSync(m.spoolPath ?? '/nonexistent'))).toBe(true);
    expect(await spoolFiles(gw)).toEqual([]);
  });

  it('a peer that drops while a queue tap runs: the tap still reads the whole spool file; reset and disconnect come after', async () => {
    const gw = makeGateway({ spool: { memoryThreshold: 100 } });
    const events: string[] = [];
    await gw.use(
      plugin('slow-store', ({ tap }) => {
        tap('claim', () => accept());
        tap('queue', async (_s, tx) => {
          events.push('queue start');
          await sleep(50);
          const bytes = await readAll(tx.message!.stream());
          events.push(`queue read ${splitReceived(bytes).rest.length}`);
        });
        tap('reset', () => void events.push('reset'));
        tap('disconnect', () => void events.push('disconnect'));
      }),
    );
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    s.session.feed(Buffer.from(`${'x'.repeat(500)}\r\n.\r\n`));
    await sleep(10); // the queue tap is running
    await s.end(); // the peer is gone
    expect(events).toEqual(['queue start', 'queue read 502', 'reset', 'disconnect']);
    expect(await spoolFiles(gw)).toEqual([]);
  });

  it('a peer that drops right after the spill leaves no file behind', async () => {
    const gw = makeGateway({ spool: { memoryThreshold: 100 } });
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    for (let i = 0; i < 20; i++) {
      const s = await ready(gw);
      await s.send(envelope('a@b.test', 'x@example.test') + 'q'.repeat(500));
      await s.end(); // no delay: the write stream may still be opening
    }
    expect(await spoolFiles(gw)).toEqual([]);
  });
});

describe('spool failures', () => {
  const LOCAL = '451 4.3.0 Local error in processing, try again later\r\n';

  it('a spool directory that vanished after DATA is created again: the message is spooled and queued', async () => {
    const gw = makeGateway({ spool: { memoryThreshold: 100 } });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test'))).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    rmSync(gw.spool.options.dir, { recursive: true, force: true });
    expect(await s.send(`${'x'.repeat(500)}\r\n.\r\nNOOP\r\n`)).toMatch(/^250 2\.0\.0 OK: queued as \S+\r\n250 2\.0\.0 OK\r\n$/);
    expect(store.stored).toHaveLength(1);
  });

  it('a spool directory that cannot be created: 451 (not a 421 internal error), and it is retried once fixed', async () => {
    const base = tmpDir();
    writeFileSync(join(base, 'blocker'), 'a file where the spool directory should be');
    const gw = createGateway({ hostname: 'mx.test', spool: { dir: join(base, 'blocker', 'spool') } }, { logger: silentLogger });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test'))).toBe(OK_MAIL + OK_RCPT + LOCAL);
    // BDAT: the chunk is refused but consumed, the session is still in sync.
    expect(await s.send('BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n')).toBe(LOCAL + '250 2.0.0 OK\r\n');
    expect(s.closed).toBe(false);
    // The administrator fixes the disk: the next message goes through without a restart.
    rmSync(join(base, 'blocker'));
    mkdirSync(join(base, 'blocker'));
    expect(await s.send('RSET\r\n' + envelope('a@b.test', 'x@example.test') + 'hi\r\n.\r\n')).toMatch(/^250 [^\r]*\r\n250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n250 2\.0\.0 OK: queued/);
    expect(store.stored).toHaveLength(1);
  });

  it('a spool directory that is a symlink (or not ours) is refused: 451, nothing written through it', async () => {
    const base = tmpDir();
    mkdirSync(join(base, 'elsewhere'));
    symlinkSync(join(base, 'elsewhere'), join(base, 'spool'));
    const gw = createGateway({ hostname: 'mx.test', spool: { dir: join(base, 'spool'), memoryThreshold: 16 } }, { logger: silentLogger });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test'))).toBe(OK_MAIL + OK_RCPT + LOCAL);
    expect(readdirSync(join(base, 'elsewhere'))).toEqual([]);
  });

  it('a spool directory others may write to (spool.dir: /tmp) is refused, and its mode left alone', async () => {
    const base = tmpDir();
    mkdirSync(join(base, 'shared'));
    chmodSync(join(base, 'shared'), 0o1777);
    const gw = createGateway({ hostname: 'mx.test', spool: { dir: join(base, 'shared') } }, { logger: silentLogger });
    await expect(gw.spool.init()).rejects.toThrow(/writable by others \(mode 1777\)/);
    expect(statSync(join(base, 'shared')).mode & 0o7777).toBe(0o1777);
  });

  it('a spool directory removed while running (a tmp cleaner) is created again for the next message', async () => {
    const gw = makeGateway({ spool: { memoryThreshold: 16 } });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const s = await ready(gw);
    const body = 'x'.repeat(100) + '\r\n.\r\n';
    expect(await s.send(envelope('a@b.test', 'x@example.test') + body)).toMatch(/250 2\.0\.0 OK: queued/);
    rmSync(gw.spool.options.dir, { recursive: true, force: true });
    const failed = await s.send(envelope('a@b.test', 'x@example.test') + body);
    const retried = failed.includes('queued') ? failed : await s.send(envelope('a@b.test', 'x@example.test') + body);
    expect(retried).toMatch(/250 2\.0\.0 OK: queued/);
    expect(existsSync(gw.spool.options.dir)).toBe(true);
  });
});
