/**
 * DNS list lookups against a real DNS server on loopback (the core's test server)
 * through a real DnsResolver: listings, return-code filters, error codes, wildcarding
 * resolvers, SERVFAIL, timeouts, aborts, IPv6 nibble names, domain and URI lists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDnsServer, type TestDnsServer } from '@mailgate/core/testing';
import { reverseLabels, silentLogger } from '@mailgate/core';
import { SpamChecks } from '../src/checks.js';
import { spamOptionsSchema } from '../src/options.js';
import {
  domainListSchema,
  domainTargets,
  ipListSchema,
  listingText,
  queryDomainLists,
  queryIpLists,
  type DnsListResolver,
  type DomainListConfig,
  type IpListConfig,
} from '../src/dnslists.js';
import { resolverFor } from './lists-helpers.js';

const V6 = '2001:db8::1';
const ipList = (config: IpListConfig) => ipListSchema.parse(config);
const domainList = (config: DomainListConfig) => domainListSchema.parse(config);

let dns: TestDnsServer;
let resolver: DnsListResolver;

beforeAll(async () => {
  dns = await startTestDnsServer({
    // RFC 5782 test points
    '2.0.0.127.bl.test': { A: ['127.0.0.2'], TXT: ['Listed\r\nsee https://bl.test/q?ip=127.0.0.2\u0007'] },
    '2.2.0.192.bl.test': { A: ['127.0.0.2'] },
    [`${reverseLabels(V6)}.bl.test`]: { A: ['127.0.0.3'] },
    '6.2.0.192.bl.test': { A: ['127.0.0.1'] }, // URIBL/SURBL "refused"
    '7.2.0.192.bl.test': { servfail: true },
    '8.2.0.192.bl.test': { drop: true },
    '9.2.0.192.bl.test': { A: ['127.0.0.2'], TXT: [] },
    // zen-like: several codes per address
    '2.2.0.192.zen.test': { A: ['127.0.0.2', '127.0.0.4'] },
    '3.2.0.192.zen.test': { A: ['127.0.0.10'] },
    // the list says "your resolver is blocked" for everything
    '2.2.0.192.err.test': { A: ['127.255.255.254'] },
    // a wildcarding resolver answers every name with a web server
    '2.2.0.192.wild.test': { A: ['198.51.100.7'] },
    '2.2.0.192.wl.test': { A: ['127.0.10.2'] },
    '9.2.0.192.slow.test': { A: ['127.0.0.2'], delayMs: 20_000 },
    '9.2.0.192.fast.test': { A: ['127.0.0.2'] },
    // domain lists
    'spam.example.dbl.test': { A: ['127.0.1.2'], TXT: ['https://dbl.test/spam.example'] },
    'spamsender.example.dbl.test': { A: ['127.0.1.2'] },
    '5.113.0.203.dbl.test': { A: ['127.0.1.2'] },
    'bad.example.multi.test': { A: ['127.0.0.4'] },
    'grey.example.multi.test': { A: ['127.0.0.8'] },
  });
  resolver = resolverFor(dns.address, { timeout: 300, retries: 1 });
});

afterAll(async () => {
  await dns?.close();
});

describe('IP lists', () => {
  it('finds the RFC 5782 test entry and not 127.0.0.1', async () => {
    const bl = ipList({ zone: 'bl.test', weight: 3 });
    const listed = await queryIpLists('127.0.0.2', [bl], resolver);
    expect(listed.problems).toEqual([]);
    expect(listed.hits).toEqual([{ list: 'bl.test', zone: 'bl.test', query: '2.0.0.127.bl.test', listed: '127.0.0.2', answers: ['127.0.0.2'], weight: 3 }]);
    const clean = await queryIpLists('127.0.0.1', [bl], resolver);
    expect(clean).toEqual({ hits: [], problems: [] });
  });

  it('asks every list in parallel and reports each hit with its own weight', async () => {
    const lists = [ipList({ zone: 'bl.test', weight: 3 }), ipList({ zone: 'zen.test', weight: 4 }), ipList({ zone: 'wl.test', weight: -2, name: 'dnswl' })];
    const { hits, problems } = await queryIpLists('192.0.2.2', lists, resolver);
    expect(problems).toEqual([]);
    expect(hits.map((h) => [h.list, h.weight, h.answers])).toEqual([
      ['bl.test', 3, ['127.0.0.2']],
      ['zen.test', 4, ['127.0.0.2', '127.0.0.4']],
      ['dnswl', -2, ['127.0.10.2']],
    ]);
  });

  it('filters by return code: exact, CIDR and postscreen patterns', async () => {
    const sbl = ipList({ zone: 'zen.test', weight: 4, name: 'sbl', returnCodes: ['127.0.0.2', '127.0.0.3'] });
    const xbl = ipList({ zone: 'zen.test', weight: 2, name: 'xbl', returnCodes: '127.0.0.4/30' });
    const pbl = ipList({ zone: 'zen.test', weight: 1, name: 'pbl', returnCodes: ['127.0.0.[10..11]'] });
    const both = await queryIpLists('192.0.2.2', [sbl, xbl, pbl], resolver);
    expect(both.hits.map((h) => [h.list, h.answers])).toEqual([
      ['sbl', ['127.0.0.2']],
      ['xbl', ['127.0.0.4']],
    ]);
    const dynamic = await queryIpLists('192.0.2.3', [sbl, xbl, pbl], resolver);
    expect(dynamic.hits.map((h) => h.list)).toEqual(['pbl']);
    expect(dynamic.problems).toEqual([]);
  });

  it('filters by bitmask (SURBL/URIBL style)', async () => {
    const red = ipList({ zone: 'zen.test', weight: 1, name: 'bit8', bitmask: 8 });
    const black = ipList({ zone: 'zen.test', weight: 1, name: 'bit4', bitmask: 4 });
    const { hits } = await queryIpLists('192.0.2.2', [red, black], resolver);
    expect(hits.map((h) => h.list)).toEqual(['bit4']);
  });

  it('looks IPv6 up by reversed nibbles, and IPv4-mapped addresses as IPv4', async () => {
    const bl = ipList({ zone: 'bl.test', weight: 3 });
    const v6 = await queryIpLists(V6, [bl], resolver);
    expect(v6.hits).toHaveLength(1);
    expect(v6.hits[0]!.query).toBe(`1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test`);
    expect(v6.hits[0]!.answers).toEqual(['127.0.0.3']);
    const mapped = await queryIpLists('::ffff:192.0.2.2', [bl], resolver);
    expect(mapped.hits.map((h) => h.query)).toEqual(['2.2.0.192.bl.test']);
  });

  it('treats 127.255.255.x as an error code: not listed, reported', async () => {
    const err = ipList({ zone: 'err.test', weight: 5, returnCodes: ['127.0.0.0/8'] });
    const { hits, problems } = await queryIpLists('192.0.2.2', [err], resolver);
    expect(hits).toEqual([]);
    expect(problems).toMatchObject([{ kind: 'list-error', list: 'err.test', query: '2.2.0.192.err.test', answers: ['127.255.255.254'] }]);
    expect(problems[0]!.message).toMatch(/error code/);
  });

  it('treats 127.0.0.1 as "refused" unless a return-code filter asks for it', async () => {
    const plain = await queryIpLists('192.0.2.6', [ipList({ zone: 'bl.test', weight: 3 })], resolver);
    expect(plain.hits).toEqual([]);
    expect(plain.problems.map((p) => p.kind)).toEqual(['list-error']);
    const explicit = await queryIpLists('192.0.2.6', [ipList({ zone: 'bl.test', weight: 3, returnCodes: '127.0.0.1' })], resolver);
    expect(explicit.hits.map((h) => h.answers)).toEqual([['127.0.0.1']]);
  });

  it('never counts answers outside 127/8 (wildcarding or hijacked resolvers)', async () => {
    const wild = ipList({ zone: 'wild.test', weight: 5 });
    const { hits, problems } = await queryIpLists('192.0.2.2', [wild], resolver);
    expect(hits).toEqual([]);
    expect(problems).toMatchObject([{ kind: 'unexpected-answer', answers: ['198.51.100.7'] }]);
  });

  it('reports SERVFAIL and timeouts as problems, not listings', async () => {
    const bl = ipList({ zone: 'bl.test', weight: 3 });
    const servfail = await queryIpLists('192.0.2.7', [bl], resolver);
    expect(servfail.hits).toEqual([]);
    expect(servfail.problems).toMatchObject([{ kind: 'dns-error', query: '7.2.0.192.bl.test' }]);
    const silent = await queryIpLists('192.0.2.8', [bl], resolver);
    expect(silent.hits).toEqual([]);
    expect(silent.problems).toMatchObject([{ kind: 'timeout', query: '8.2.0.192.bl.test' }]);
  });

  it('keeps what answered when the AbortSignal fires, and reports the rest as aborted', async () => {
    let fastAnswered!: () => void;
    const fast = new Promise<void>((r) => (fastAnswered = r));
    // the real resolver, watched: the test aborts once the fast answer is in
    const watched: DnsListResolver = {
      resolve: ((name: string, type: 'A') => {
        const p = resolverFor(dns.address, { timeout: 30_000 }).resolve(name, type);
        if (name.endsWith('fast.test')) p.then(fastAnswered, fastAnswered);
        return p;
      }) as DnsListResolver['resolve'],
    };
    const controller = new AbortController();
    const lists = [ipList({ zone: 'fast.test', weight: 1 }), ipList({ zone: 'slow.test', weight: 2 })];
    const pending = queryIpLists('192.0.2.9', lists, watched, controller.signal);
    await fast;
    controller.abort();
    const { hits, problems } = await pending;
    expect(hits.map((h) => h.list)).toEqual(['fast.test']);
    expect(problems).toMatchObject([{ kind: 'aborted', list: 'slow.test' }]);
  });

  it('sends nothing when the signal has already fired', async () => {
    const before = dns.queries.length;
    const { hits, problems } = await queryIpLists('192.0.2.2', [ipList({ zone: 'bl.test', weight: 3 })], resolver, AbortSignal.abort());
    expect(hits).toEqual([]);
    expect(problems.map((p) => p.kind)).toEqual(['aborted']);
    expect(dns.queries.length).toBe(before);
  });

  it('gives an empty result for something that is not an IP address', async () => {
    expect(await queryIpLists('not an ip', [ipList({ zone: 'bl.test', weight: 1 })], resolver)).toEqual({ hits: [], problems: [] });
    expect(await queryIpLists('', [], resolver)).toEqual({ hits: [], problems: [] });
  });

  it('fetches the TXT of a listing only when asked, as one safe line', async () => {
    const { hits } = await queryIpLists('127.0.0.2', [ipList({ zone: 'bl.test', weight: 3 })], resolver);
    expect(dns.queries.filter((q) => q.type === 'TXT')).toEqual([]);
    expect(await listingText(hits[0]!, resolver)).toBe('Listed see https://bl.test/q?ip=127.0.0.2');
    expect(await listingText({ query: '9.2.0.192.bl.test' }, resolver)).toBeUndefined();
    expect(await listingText({ query: '7.2.0.192.bl.test' }, resolver)).toBeUndefined();
  });
});

describe('domain lists', () => {
  const dbl = (): ReturnType<typeof domainList> => domainList({ zone: 'dbl.test', weight: 2.5 });

  it('looks up registered domains of the sender, HELO, From and URLs, each once', async () => {
    const targets = domainTargets({
      sender: 'bounce@mail.SpamSender.example',
      helo: 'mx1.spamsender.example',
      from: 'Spam <news@spam.example>',
      urls: ['http://www.spam.example/a', 'https://clean.example.co.uk/b', 'http://203.0.113.5/x'],
    });
    expect(targets.map((t) => [t.listed, t.checks])).toEqual([
      ['spamsender.example', ['sender', 'helo']],
      ['spam.example', ['from', 'uri']],
      ['example.co.uk', ['uri']],
      ['203.0.113.5', ['uri']],
    ]);
    const { hits, problems } = await queryDomainLists(targets, [dbl()], resolver);
    expect(problems).toEqual([]);
    expect(hits.map((h) => [h.listed, h.query, h.checks])).toEqual([
      ['spamsender.example', 'spamsender.example.dbl.test', ['sender', 'helo']],
      ['spam.example', 'spam.example.dbl.test', ['from', 'uri']],
      ['203.0.113.5', '5.113.0.203.dbl.test', ['uri']],
    ]);
  });

  it('scores a list once per message however many of its domains it lists', async () => {
    const options = spamOptionsSchema.parse({ rules: { defaults: false }, spf: false, dkim: false, dmarc: false, uribl: [{ zone: 'dbl.test', weight: 2.5 }] });
    const checks = new SpamChecks(options, resolverFor(dns.address, { timeout: 300, retries: 1 }), silentLogger, undefined);
    const raw = Buffer.from('Subject: links\r\n\r\nhttp://www.spam.example/a http://203.0.113.5/x https://clean.example.co.uk/b\r\n');
    const { tests } = await checks.content(raw);
    expect(tests).toEqual([{ name: 'URIBL_DBL_TEST', score: 2.5, list: 'dbl.test', describe: 'URL domain spam.example, 203.0.113.5 listed in dbl.test (127.0.1.2)' }]);
  });

  it('takes URL hosts parsed already (MessageContent.urlHosts) as URLs', () => {
    const urlHosts = ['www.spam.example', 'clean.example.co.uk', '203.0.113.5', '[2001:db8::1]', 'localhost'];
    const fromHosts = domainTargets({ from: 'news@spam.example', urlHosts });
    expect(fromHosts.map((t) => [t.listed, t.checks])).toEqual([
      ['spam.example', ['from', 'uri']],
      ['example.co.uk', ['uri']],
      ['203.0.113.5', ['uri']],
      ['2001:db8::1', ['uri']],
    ]);
    const urls = ['http://www.spam.example/a', 'https://clean.example.co.uk/b', 'http://203.0.113.5/x', 'http://[2001:db8::1]/', 'http://localhost/'];
    expect(domainTargets({ from: 'news@spam.example', urls })).toEqual(fromHosts);
  });

  it('asks a list only about the domains its `check` covers', async () => {
    const uriOnly = domainList({ zone: 'dbl.test', weight: 1, check: ['uri'] });
    const targets = domainTargets({ sender: 'a@spamsender.example', urls: ['http://spam.example/'] });
    const before = dns.queries.length;
    const { hits } = await queryDomainLists(targets, [uriOnly], resolver);
    expect(hits.map((h) => h.listed)).toEqual(['spam.example']);
    expect(dns.queries.slice(before).map((q) => q.name.toLowerCase())).toEqual(['spam.example.dbl.test']);
  });

  it('accepts plain host names and filters bitmask codes', async () => {
    const black = domainList({ zone: 'multi.test', weight: 2, bitmask: 4, name: 'multi-black' });
    const { hits } = await queryDomainLists(['www.bad.example', 'grey.example', 'bad.example'], [black], resolver);
    expect(hits.map((h) => [h.list, h.listed, h.answers])).toEqual([['multi-black', 'bad.example', ['127.0.0.4']]]);
  });

  it('skips never-query domains and names DNS cannot carry, without a query', async () => {
    const before = dns.queries.length;
    const targets = domainTargets(
      {
        sender: 'me@mail.mydomain.example',
        from: 'Me <me@mydomain.example>',
        helo: '[192.0.2.1]',
        urls: ['http://exa mple.com/', `http://${'a'.repeat(64)}.example/`, 'http://localhost/', 'http://com/', 'javascript:alert(1)', '%%%'],
      },
      { neverQuery: ['MyDomain.example.'] },
    );
    expect(targets).toEqual([]);
    const result = await queryDomainLists(targets, [dbl()], resolver);
    expect(result).toEqual({ hits: [], problems: [] });
    expect(dns.queries.length).toBe(before);
  });

  it('looks at most maxDomains distinct domains up, envelope domains first', async () => {
    const urls = Array.from({ length: 30 }, (_, i) => `http://host.d${i}.example/`);
    const targets = domainTargets({ sender: 's@spamsender.example', urls });
    expect(targets).toHaveLength(20);
    expect(targets[0]!.listed).toBe('spamsender.example');
    expect(domainTargets({ urls }, { maxDomains: 5 })).toHaveLength(5);
    const before = dns.queries.length;
    await queryDomainLists(targets, [dbl()], resolver);
    expect(dns.queries.length - before).toBe(20);
  });

  it('reduces IDN and obfuscated URL hosts as a mail client would', () => {
    const targets = domainTargets({ urls: ['http://www.bücher.example/', 'http://0x7f000002/', 'HTTP://WWW.SPAM.EXAMPLE./x', 'mailto:x@spam.example?subject=hi'] });
    expect(targets.map((t) => [t.listed, t.prefix])).toEqual([
      ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
      ['127.0.0.2', '2.0.0.127'],
      ['spam.example', 'spam.example'],
    ]);
  });

  it('stays bounded on a message with a hundred thousand URLs', async () => {
    const urls = Array.from({ length: 100_000 }, (_, i) => `http://x${i}.example/${'p'.repeat(50)}`);
    const started = performance.now();
    const targets = domainTargets({ urls });
    expect(targets).toHaveLength(20);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('list config', () => {
  it('defaults the name to the zone and normalizes the zone', () => {
    expect(ipListSchema.parse({ zone: 'Zen.Spamhaus.ORG.', weight: 4 })).toEqual({ zone: 'zen.spamhaus.org', weight: 4, name: 'zen.spamhaus.org' });
    expect(domainListSchema.parse({ zone: 'dbl.test', weight: 1 }).check).toEqual(['sender', 'helo', 'from', 'uri']);
  });

  it('refuses return codes outside 127/8 and malformed ones, with the path', () => {
    for (const bad of ['10.0.0.2', '0.0.0.0/0', '127.0.0.[2..300]', '[126..127].0.0.2', 'zen', '127.0.0.2/33']) {
      const result = ipListSchema.safeParse({ zone: 'zen.test', weight: 1, returnCodes: [bad] });
      expect(result.success, bad).toBe(false);
      expect(result.error!.issues[0]!.path).toEqual(['returnCodes', 0]);
    }
    expect(ipListSchema.safeParse({ zone: 'zen.test', weight: 1, returnCodes: ['127.0.[0..1].[2;4;10..11]', '127.0.0.0/24'] }).success).toBe(true);
  });

  it('refuses bad zones, weights, bitmasks and unknown keys', () => {
    for (const bad of [
      { zone: '', weight: 1 },
      { zone: 'bad zone.test', weight: 1 },
      { zone: `${'a'.repeat(64)}.test`, weight: 1 },
      { zone: 'ok.test', weight: Infinity },
      { zone: 'ok.test', weight: 1, bitmask: 0 },
      { zone: 'ok.test', weight: 1, typo: true },
    ]) {
      expect(ipListSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(domainListSchema.safeParse({ zone: 'ok.test', weight: 1, check: ['body'] }).success).toBe(false);
  });
});
