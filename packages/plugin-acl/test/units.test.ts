import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIp, silentLogger } from '@mailgate/core';
import { MemoryCounterStore, isCounterStore } from '../src/index.js';
import { DynamicList, entryError } from '../src/lists.js';
import { canonicalDomain } from '../src/names.js';
import { compileAddressPattern, compileHostPattern, compileUserPattern, toMatchAddress, type AddressPredicate, type NamePredicate } from '../src/patterns.js';
import { splitListFile } from '../src/files.js';

describe('ip list entries', () => {
  // Parsing and matching are the core's (packages/core/test/net/ip.test.ts).
  it('are refused with the reason when they are not networks', () => {
    for (const bad of ['192.0.2.0/33', '2001:db8::/129', '192.0.2', 'example.com', '192.0.2.0/', '192.0.2.0/-1', '1.2.3.4/8x', '::1%lo/128']) {
      expect(entryError('ip', bad), bad).toMatch(/expected an IP address/);
    }
    expect(entryError('ip', ' 192.0.2.0/24 ')).toBeUndefined();
    expect(entryError('ip', '::ffff:192.0.2.0/120')).toBeUndefined();
  });
});

describe('domain canonical form', () => {
  it('folds ASCII case and a trailing dot, converts IDN losslessly', () => {
    expect(canonicalDomain('Example.TEST.')).toBe('example.test');
    expect(canonicalDomain('bücher.test')).toBe('xn--bcher-kva.test');
    expect(canonicalDomain('[IPv6:::1]')).toBe('[ipv6:::1]');
  });

  it('never folds look-alikes onto ASCII', () => {
    expect(canonicalDomain('\u212Aexample.test')).not.toBe('kexample.test'); // KELVIN SIGN
    expect(canonicalDomain('ｅｘａｍｐｌｅ.test')).not.toBe('example.test'); // full width
    expect(canonicalDomain('ex\u0430mple.test')).not.toBe('example.test'); // Cyrillic a
  });
});

describe('patterns', () => {
  const addr = (p: string): AddressPredicate => compileAddressPattern(p) as AddressPredicate;
  const a = (text: string) => {
    const at = text.lastIndexOf('@');
    return toMatchAddress({ local: text.slice(0, at), domain: text.slice(at + 1) });
  };

  it('exact address, local part, domain, subdomains', () => {
    expect(addr('User@Example.test')(a('user@EXAMPLE.TEST'))).toBe(true);
    expect(addr('user@example.test')(a('user2@example.test'))).toBe(false);
    expect(addr('postmaster@')(a('postmaster@any.test'))).toBe(true);
    expect(addr('@example.test')(a('x@example.test'))).toBe(true);
    expect(addr('example.test')(a('x@example.test'))).toBe(true);
    expect(addr('example.test')(a('x@sub.example.test'))).toBe(false);
    expect(addr('.example.test')(a('x@sub.example.test'))).toBe(true);
    expect(addr('.example.test')(a('x@example.test'))).toBe(false);
    expect(addr('.example.test')(a('x@badexample.test'))).toBe(false);
    expect(addr('@example.test')(null)).toBe(false);
  });

  it('globs and regular expressions', () => {
    expect(addr('*@*.example.test')(a('x@a.b.example.test'))).toBe(true);
    expect(addr('*@*.example.test')(a('x@example.test'))).toBe(false);
    expect(addr('bounce-*@example.test')(a('bounce-123@example.test'))).toBe(true);
    expect(addr('*.example.test')(a('x@mx.example.test'))).toBe(true);
    expect(addr('us?r@x.test')(a('user@x.test'))).toBe(true);
    expect(addr('/^[0-9]+@/')(a('123@x.test'))).toBe(true);
    expect(addr('/^[0-9]+@/')(a('a123@x.test'))).toBe(false);
    expect(addr('/@EXAMPLE\\.test$/i')(a('x@example.test'))).toBe(true);
  });

  it('the null sender', () => {
    expect(addr('<>')(null)).toBe(true);
    expect(addr('<>')(a('x@y.test'))).toBe(false);
  });

  it('host and user patterns', () => {
    const host = (p: string): NamePredicate => compileHostPattern(p) as NamePredicate;
    expect(host('mail.example.test')('mail.example.test')).toBe(true);
    expect(host('.example.test')('mail.example.test')).toBe(true);
    expect(host('.example.test')('example.test')).toBe(false);
    expect(host('*.dynamic.*')('1-2-3-4.dynamic.isp.test')).toBe(true);
    expect(host('/^\\d+-\\d+/')('1-2.isp.test')).toBe(true);
    expect(host('[192.0.2.1]')('[192.0.2.1]')).toBe(true);
    const user = (p: string): NamePredicate => compileUserPattern(p) as NamePredicate;
    expect(user('Alice')('alice')).toBe(true);
    expect(user('svc-*')('svc-backup')).toBe(true);
  });

  it('refuses invalid patterns with a reason', () => {
    expect(entryError('address', '/[/')).toMatch(/invalid regular expression/);
    expect(entryError('address', '/x/g')).toMatch(/g and y flags/);
    expect(entryError('host', '')).toMatch(/empty/);
    expect(entryError('domain', 'exa mple.test')).toMatch(/expected a domain name/);
    expect(entryError('domain', '*.example.test')).toMatch(/expected a domain name/);
    expect(entryError('domainPattern', '.example.test')).toBeUndefined();
  });
});

describe('MemoryCounterStore', () => {
  it('counts within a window and starts again after it', async () => {
    let now = 1_000;
    const store = new MemoryCounterStore({ now: () => now });
    expect(isCounterStore(store)).toBe(true);
    expect(await store.increment('k', 100)).toBe(1);
    expect(await store.increment('k', 100)).toBe(2);
    expect(await store.get('k')).toBe(2);
    now += 99;
    expect(await store.increment('k', 100)).toBe(3);
    now += 1;
    expect(await store.get('k')).toBe(0);
    expect(await store.increment('k', 100)).toBe(1);
  });

  it('bounds its memory', async () => {
    let now = 0;
    const store = new MemoryCounterStore({ maxKeys: 100, now: () => now });
    for (let i = 0; i < 1_000; i++) await store.increment(`k${i}`, 1_000_000);
    expect(store.size).toBeLessThanOrEqual(100);
    // The newest keys survive.
    expect(await store.get('k999')).toBe(1);
    now = 2_000_000;
    await store.increment('fresh', 10);
    for (let i = 0; i < 200; i++) await store.increment(`x${i}`, 10);
    expect(store.size).toBeLessThanOrEqual(100);
  });

  it('gives back (negative by) within a window, and never opens a window by giving back', async () => {
    let now = 1_000;
    const store = new MemoryCounterStore({ now: () => now });
    expect(await store.increment('k', 100, -1)).toBe(0);
    expect(store.size).toBe(0);
    expect(await store.increment('k', 100)).toBe(1);
    expect(await store.increment('k', 100)).toBe(2);
    expect(await store.increment('k', 100, -1)).toBe(1);
    now += 100;
    expect(await store.increment('k', 100, -1)).toBe(0);
    expect(await store.get('k')).toBe(0);
    expect(await store.increment('k', 100)).toBe(1);
  });

  it('hands out concurrency slots', async () => {
    const store = new MemoryCounterStore();
    expect(await store.acquire('c', 2)).toBe(true);
    expect(await store.acquire('c', 2)).toBe(true);
    expect(await store.acquire('c', 2)).toBe(false);
    await store.release('c');
    expect(store.held('c')).toBe(1);
    expect(await store.acquire('c', 2)).toBe(true);
    await store.release('c');
    await store.release('c');
    expect(store.held('c')).toBe(0);
  });
});

describe('list files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'acl-lists-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('skips comments and blank lines', () => {
    expect(splitListFile('# nets\n\n10.0.0.0/8  # office\r\n  192.0.2.1\n/a #b/\n')).toEqual([
      { text: '10.0.0.0/8', line: 3 },
      { text: '192.0.2.1', line: 4 },
      { text: '/a #b/', line: 5 },
    ]);
  });

  it('reloads a list file when it changes, and keeps the old content when the new one is broken', async () => {
    const file = join(dir, 'nets.txt');
    await writeFile(file, '192.0.2.0/24\n');
    const seen: string[][] = [];
    const list = await DynamicList.create('ip', ['198.51.100.1', { file: 'nets.txt' }], {
      configDir: dir,
      reloadInterval: 0,
      log: silentLogger,
      where: 'test',
      onEntries: (e) => seen.push(e),
    });
    expect((await list.get()).has(parseIp('192.0.2.5'))).toBe(true);
    expect((await list.get()).has(parseIp('198.51.100.1'))).toBe(true);
    await writeFile(file, '203.0.113.0/24\n');
    expect((await list.get()).has(parseIp('192.0.2.5'))).toBe(false);
    expect((await list.get()).has(parseIp('203.0.113.5'))).toBe(true);
    await writeFile(file, '203.0.113.0/24\nnot-an-ip\n');
    expect((await list.get()).has(parseIp('203.0.113.5'))).toBe(true);
    expect(seen).toEqual([
      ['198.51.100.1', '192.0.2.0/24'],
      ['198.51.100.1', '203.0.113.0/24'],
    ]);
  });

  it('names the file and line of a bad entry at startup', async () => {
    await writeFile(join(dir, 'bad.txt'), '# header\n192.0.2.0/24\n300.1.1.1\n');
    await expect(
      DynamicList.create('ip', [{ file: 'bad.txt' }], { configDir: dir, reloadInterval: 0, log: silentLogger, where: 'relayFrom' }),
    ).rejects.toThrow(/relayFrom: .*bad\.txt:3: expected an IP address/);
    await expect(
      DynamicList.create('ip', [{ file: 'missing.txt' }], { configDir: dir, reloadInterval: 0, log: silentLogger, where: 'relayFrom' }),
    ).rejects.toThrow(/relayFrom: .*ENOENT/);
  });
});
