/**
 * check_host() beyond the suite: hostile zones (huge records, deep include and redirect
 * chains, CNAME loops, thousands of MX/PTR/A records), the configurable limits, the HELO
 * identity, explanations and the abort signal. Real resolver, real server on loopback.
 */
import { DnsResolver } from '@mailgate/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SPF_RECORD_LENGTH } from '../../src/spf/evaluate.js';
import { checkSpf, checkSpfHelo, type SpfOptions, type SpfQuery } from '../../src/spf/index.js';
import { startZoneServer, type SuiteRecord, type SuiteZone, type ZoneServer } from './zone-server.js';

const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const names = (n: number, f: (i: number) => [string, SuiteRecord[]]): SuiteZone => Object.fromEntries(many(n, f));

const zone: SuiteZone = {
  // 3,000 terms that each cause a lookup: over TCP (too big for UDP), stopped at 10
  'huge.test': [{ TXT: `v=spf1 ${many(3_000, () => 'a').join(' ')} -all` }, { A: '192.0.2.200' }],
  // 10,000 such terms: 20 KB, longer than any SPF record has reason to be
  'toolong.test': [{ TXT: `v=spf1 ${many(10_000, () => 'a').join(' ')} -all` }, { A: '192.0.2.200' }],
  // an include chain 100 deep, a self-include, a redirect ping-pong
  ...names(100, (i) => [`l${i}.chain.test`, [{ TXT: `v=spf1 include:l${i + 1}.chain.test -all` }]]),
  'self.test': [{ TXT: 'v=spf1 include:self.test -all' }],
  'ping.test': [{ TXT: 'v=spf1 redirect=pong.test' }],
  'pong.test': [{ TXT: 'v=spf1 redirect=ping.test' }],
  // the policy domain is a CNAME loop
  'loop.test': [{ CNAME: 'loop2.test' }],
  'loop2.test': [{ CNAME: 'loop.test' }],
  'via-cname.test': [{ CNAME: 'policy.test' }],
  'policy.test': [{ TXT: 'v=spf1 ip4:192.0.2.1 -all' }],
  // 500 MX hosts; 500 PTR names; 1,000 A records
  'manymx.test': [{ TXT: 'v=spf1 mx -all' }, ...many(500, (i): SuiteRecord => ({ MX: [i, `mx${i}.manymx.test`] }))],
  ...names(500, (i) => [`mx${i}.manymx.test`, [{ A: '192.0.2.1' }]]),
  '1.2.0.192.in-addr.arpa': many(500, (i): SuiteRecord => ({ PTR: `h${i}.ptr.test` })),
  ...names(500, (i) => [`h${i}.ptr.test`, [{ A: '192.0.2.1' }]]),
  'ptr.test': [{ TXT: 'v=spf1 ptr:h499.ptr.test ptr -all' }],
  'manya.test': [{ TXT: 'v=spf1 a -all' }, ...many(1000, (i): SuiteRecord => ({ A: `10.0.${i >> 8}.${i & 255}` })), { A: '192.0.2.1' }],
  // voids and lookups for the configurable limits
  'voids.test': [{ TXT: 'v=spf1 a:none1.test a:none2.test ?all' }],
  'two.test': [{ TXT: 'v=spf1 a a ?all' }, { A: '192.0.2.200' }],
  // many %{p}/ptr terms cost one PTR lookup and one address lookup per name
  'pmacro.test': [{ TXT: `v=spf1 ${many(9, () => 'exists:%{p}.p.test').join(' ')} -all` }],
  // explanations
  'exp.test': [{ TXT: 'v=spf1 -all exp=why.exp.test' }],
  'why.exp.test': [{ TXT: '%{l} from %{c} refused by %{r}' }],
  'include-exp.test': [{ TXT: 'v=spf1 include:exp.test -all' }],
  'bigexp.test': [{ TXT: 'v=spf1 -all exp=why.bigexp.test' }],
  'why.bigexp.test': [{ TXT: `refused ${'%{d}'.repeat(600)}` }],
  // HELO identity
  'helo.test': [{ TXT: 'v=spf1 ip4:192.0.2.9 -all' }],
  // a policy that never answers
  'silent.test': ['TIMEOUT'],
  'silent-include.test': [{ TXT: 'v=spf1 include:silent.test -all' }],
};

let server: ZoneServer;
beforeAll(async () => {
  server = await startZoneServer(zone);
});
afterAll(async () => {
  await server.close();
});

function options(extra: Partial<SpfOptions> = {}): SpfOptions {
  return { dns: new DnsResolver({ servers: [server.address], timeout: 1000, retries: 1, cache: false }), ...extra };
}

async function check(sender: string, extra: Partial<SpfOptions> = {}, ip = '192.0.2.1', helo = 'client.example'): Promise<ReturnType<typeof checkSpf> extends Promise<infer R> ? R & { queries: number } : never> {
  const before = server.queries.length;
  const result = await checkSpf({ ip, sender, helo, receiver: 'mx.receiver.test' }, options(extra));
  return { ...result, queries: server.queries.length - before };
}

describe('SPF evaluation: hostile zones stay bounded', () => {
  it('stops a 3,000-term record at the 11th lookup term', async () => {
    const r = await check('a@huge.test');
    expect(r.result).toBe('permerror');
    expect(r.problem).toMatch(/more than 10 DNS-querying terms/);
    expect(r.queries).toBeLessThanOrEqual(12);
  });

  it('refuses a record longer than MAX_SPF_RECORD_LENGTH before parsing it: permerror, no lookups', async () => {
    const r = await check('a@toolong.test');
    expect(r.result).toBe('permerror');
    expect(r.problem).toMatch(new RegExp(`more than ${MAX_SPF_RECORD_LENGTH}`));
    expect(r.queries).toBe(1); // the TXT only
  });

  it('stops an include chain 100 deep, a self-include and a redirect loop at the lookup limit', async () => {
    for (const sender of ['a@l0.chain.test', 'a@self.test', 'a@ping.test']) {
      const r = await check(sender);
      expect(r.result, sender).toBe('permerror');
      expect(r.queries, sender).toBeLessThanOrEqual(11);
    }
  });

  it('gives temperror for a policy domain that is a CNAME loop, and follows a plain CNAME', async () => {
    expect((await check('a@loop.test')).result).toBe('temperror');
    expect((await check('a@via-cname.test')).result).toBe('pass');
  });

  it('refuses an mx with 500 hosts without looking any of them up', async () => {
    const r = await check('a@manymx.test');
    expect(r.result).toBe('permerror');
    expect(r.queries).toBe(2); // the TXT and the MX
  });

  it('looks at the first 10 of 500 PTR names only', async () => {
    const r = await check('a@ptr.test');
    // h499 validates but is not among the first ten names, so only the bare "ptr"
    // (h0.ptr.test is below ptr.test) matches; at most ten names were validated
    expect(r.result).toBe('pass');
    expect(r.mechanism).toBe('ptr');
    expect(r.queries).toBeLessThanOrEqual(2 + 10);
  });

  it('matches among 1,001 A records (a TCP answer)', async () => {
    expect((await check('a@manya.test')).result).toBe('pass');
  });

  it('does the %{p} work once for many terms', async () => {
    const r = await check('a@pmacro.test', { maxVoidLookups: 20 });
    expect(r.result).toBe('fail');
    const ptrQueries = server.queries.slice(-r.queries).filter((q) => q.endsWith(' PTR'));
    expect(ptrQueries).toHaveLength(1);
    expect(r.queries).toBeLessThanOrEqual(1 + 1 + 10 + 9);
  });
});

describe('SPF evaluation: configurable limits', () => {
  it('honours maxVoidLookups', async () => {
    expect((await check('a@voids.test')).result).toBe('neutral');
    const r = await check('a@voids.test', { maxVoidLookups: 1 });
    expect(r.result).toBe('permerror');
    expect(r.problem).toMatch(/void/);
  });

  it('honours maxLookups', async () => {
    expect((await check('a@two.test')).result).toBe('neutral');
    expect((await check('a@two.test', { maxLookups: 1 })).result).toBe('permerror');
  });
});

describe('SPF evaluation: explanations', () => {
  it('expands the exp= text with c and r, and drops characters that could break a reply line', async () => {
    const r = await checkSpf({ ip: '192.0.2.1', sender: 'bad\r\nguy@exp.test', helo: 'x.example', receiver: 'mx.receiver.test' }, options());
    expect(r.result).toBe('fail');
    expect(r.explanation).toBe('bad??guy from 192.0.2.1 refused by mx.receiver.test');
  });

  it('uses "unknown" for %{r} without a receiver, and no explanation from an included record', async () => {
    const r = await checkSpf({ ip: '192.0.2.1', sender: 'a@exp.test', helo: 'x.example' }, options());
    expect(r.explanation).toBe('a from 192.0.2.1 refused by unknown');
    const included = await check('a@include-exp.test');
    expect(included.result).toBe('fail');
    expect(included.explanation).toBeUndefined();
  });

  it('gives no explanation from an exp= record longer than MAX_EXPLANATION_TEMPLATE_LENGTH, but still fails', async () => {
    const r = await check('a@bigexp.test');
    expect(r.result).toBe('fail');
    expect(r.explanation).toBeUndefined();
  });
});

describe('SPF identities', () => {
  it('checks the HELO identity against the HELO name', async () => {
    const q: SpfQuery = { ip: '192.0.2.9', sender: 'someone@exp.test', helo: 'helo.test' };
    expect(await checkSpfHelo(q, options())).toMatchObject({ result: 'pass', domain: 'helo.test', identity: 'helo', mechanism: 'ip4:192.0.2.9' });
    expect(await checkSpf(q, options())).toMatchObject({ result: 'fail', domain: 'exp.test', identity: 'mailfrom' });
  });

  it('checks postmaster@helo for the null reverse-path', async () => {
    const r = await checkSpf({ ip: '192.0.2.10', sender: '', helo: 'helo.test' }, options());
    expect(r).toMatchObject({ result: 'fail', domain: 'helo.test', identity: 'mailfrom' });
  });

  it('gives none for HELO names that are not domains, without asking DNS', async () => {
    for (const helo of ['[192.0.2.1]', '192.0.2.1', '[IPv6:2001:db8::1]', 'localhost', 'a..b.test', 'has space.test', `${'x'.repeat(64)}.test`, '']) {
      const before = server.queries.length;
      expect((await checkSpfHelo({ ip: '192.0.2.1', sender: '', helo }, options())).result, helo).toBe('none');
      expect(server.queries.length, helo).toBe(before);
    }
  });

  it('rejects a client address that is not an IP address', async () => {
    await expect(checkSpf({ ip: 'not-an-ip', sender: 'a@helo.test', helo: 'x' }, options())).rejects.toThrow(TypeError);
  });
});

describe('SPF evaluation: abort', () => {
  it('rejects with the signal reason while a lookup is outstanding', async () => {
    const controller = new AbortController();
    const dns = new DnsResolver({ servers: [server.address], timeout: 30_000, retries: 1, cache: false });
    const pending = checkSpf({ ip: '192.0.2.1', sender: 'a@silent-include.test', helo: 'x.example' }, { dns, signal: controller.signal });
    // abort once the server has seen the question that will never be answered
    while (!server.queries.includes('silent.test TXT')) await new Promise((resolve) => setTimeout(resolve, 5));
    const reason = new Error('session closed');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it('asks nothing when the signal is already aborted', async () => {
    const before = server.queries.length;
    const reason = new Error('too late');
    await expect(checkSpf({ ip: '192.0.2.1', sender: 'a@policy.test', helo: 'x.example' }, options({ signal: AbortSignal.abort(reason) }))).rejects.toBe(reason);
    expect(server.queries.length).toBe(before);
  });

  it('gives temperror when the include target never answers', async () => {
    expect((await check('a@silent-include.test')).result).toBe('temperror');
  });
});
