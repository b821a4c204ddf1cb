/**
 * DMARC evaluation on a real DNS server on loopback: policy lookup at the From: domain
 * and the organizational domain (PSL), strict and relaxed alignment of DKIM and SPF,
 * p=none/quarantine/reject, pct=, sp=, no record, DNS trouble. Messages are signed with
 * the RFC 8463 keys for domains of our own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type DnsResolver } from '@mailgate/core';
import type { TestDnsServer } from '@mailgate/core/testing';
import { checkAuth, evaluateDmarc, isAligned, mailauthResolver, organizationalDomain, type DkimSignatureResult } from '../src/auth/index.js';
import { MAX_AUTH_TXT_LENGTH } from '../src/auth/resolver-adapter.js';
import { SpamChecks } from '../src/checks.js';
import { spamOptionsSchema } from '../src/options.js';
import { mail, sign, startAuthDns } from './auth-helpers.js';

let dns: { server: TestDnsServer; resolver: DnsResolver };
beforeAll(async () => {
  dns = await startAuthDns();
});
afterAll(async () => {
  await dns.server.close();
});

const pass = (domain: string): DkimSignatureResult => ({ result: 'pass', domain });
const dmarc = (from: string, options: { dkim?: DkimSignatureResult[]; spf?: { result: string; domain: string }; random?: () => number } = {}) =>
  evaluateDmarc({ headerFrom: [from], dkim: options.dkim ?? [], spf: options.spf, resolver: mailauthResolver(dns.resolver), ...(options.random ? { random: options.random } : {}) });

describe('alignment', () => {
  it('relaxed: the same organizational domain; strict: the same name', () => {
    expect(isAligned('example.com', 'mail.example.com', false)).toBe(true);
    expect(isAligned('example.com', 'mail.example.com', true)).toBe(false);
    expect(isAligned('Example.COM.', 'example.com', true)).toBe(true);
    expect(isAligned('a.example.co.uk', 'b.example.co.uk', false)).toBe(true);
    // co.uk is a public suffix: two registrants there are not aligned
    expect(isAligned('one.co.uk', 'two.co.uk', false)).toBe(false);
    expect(organizationalDomain('x.y.github.io')).toBe('y.github.io');
  });
});

describe('policy', () => {
  it('an aligned DKIM pass passes', async () => {
    const r = await dmarc('ann@reject.example', { dkim: [pass('reject.example')] });
    expect(r).toMatchObject({ result: 'pass', domain: 'reject.example', policy: 'reject', aligned: { dkim: 'reject.example' } });
  });

  it('an aligned SPF pass passes; an SPF fail does not', async () => {
    expect(await dmarc('ann@reject.example', { spf: { result: 'pass', domain: 'bounce.reject.example' } })).toMatchObject({ result: 'pass', aligned: { spf: 'bounce.reject.example' } });
    expect(await dmarc('ann@reject.example', { spf: { result: 'fail', domain: 'reject.example' } })).toMatchObject({ result: 'fail', disposition: 'reject' });
  });

  it('a DKIM pass of another domain does not align: fail with p=reject', async () => {
    const r = await dmarc('ann@reject.example', { dkim: [pass('signer.example')] });
    expect(r).toMatchObject({ result: 'fail', policy: 'reject', disposition: 'reject' });
  });

  it('a failing signature of the From: domain does not align', async () => {
    const r = await dmarc('ann@reject.example', { dkim: [{ result: 'fail', domain: 'reject.example' }] });
    expect(r.result).toBe('fail');
  });

  it('adkim=s / aspf=s: a subdomain signer or bounce domain does not align, the exact one does', async () => {
    expect(await dmarc('ann@strict.example', { dkim: [pass('mail.strict.example')] })).toMatchObject({ result: 'fail', disposition: 'reject' });
    expect(await dmarc('ann@strict.example', { spf: { result: 'pass', domain: 'mail.strict.example' } })).toMatchObject({ result: 'fail' });
    expect(await dmarc('ann@strict.example', { dkim: [pass('strict.example')] })).toMatchObject({ result: 'pass' });
    expect(await dmarc('ann@strict.example', { spf: { result: 'pass', domain: 'strict.example' } })).toMatchObject({ result: 'pass' });
  });

  it('relaxed (the default): a subdomain signer aligns', async () => {
    expect(await dmarc('ann@reject.example', { dkim: [pass('mail.reject.example')] })).toMatchObject({ result: 'pass' });
  });

  it('p=quarantine and p=none', async () => {
    expect(await dmarc('ann@quar.example')).toMatchObject({ result: 'fail', policy: 'quarantine', disposition: 'quarantine' });
    expect(await dmarc('ann@none.example')).toMatchObject({ result: 'fail', policy: 'none', disposition: 'none' });
  });

  it('a subdomain without a record gets the organizational domain\'s sp=', async () => {
    expect(await dmarc('ann@sub.parent.example')).toMatchObject({ result: 'fail', domain: 'sub.parent.example', policy: 'quarantine', disposition: 'quarantine', sp: 'quarantine' });
    expect(await dmarc('ann@parent.example')).toMatchObject({ result: 'fail', policy: 'reject' });
    // and a subdomain of a domain without sp= gets its p=
    expect(await dmarc('ann@deep.sub.reject.example')).toMatchObject({ result: 'fail', policy: 'reject', disposition: 'reject' });
  });

  it('pct=50: failures outside the sample get the next weaker policy (RFC 7489 §6.6.4)', async () => {
    expect(await dmarc('ann@pct.example', { random: () => 0.2 })).toMatchObject({ result: 'fail', policy: 'reject', pct: 50, disposition: 'reject' });
    expect(await dmarc('ann@pct.example', { random: () => 0.7 })).toMatchObject({ result: 'fail', policy: 'reject', pct: 50, disposition: 'quarantine' });
  });

  it('no record is none; an invalid p= is taken as none', async () => {
    expect(await dmarc('ann@nothing.example')).toMatchObject({ result: 'none', domain: 'nothing.example' });
    expect(await dmarc('ann@bad-p.example')).toMatchObject({ result: 'fail', policy: 'none', disposition: 'none' });
  });

  it(`TXT records over MAX_AUTH_TXT_LENGTH are left out: alone, no policy; beside a real one, that one applies`, async () => {
    const junk = `v=DMARC1; p=none; rua=mailto:${'x'.repeat(MAX_AUTH_TXT_LENGTH)}@huge.example`;
    dns.server.set('_dmarc.huge.example', { TXT: [junk] });
    dns.server.set('_dmarc.mixed.example', { TXT: ['v=DMARC1; p=reject', junk] });
    expect(await dmarc('ann@huge.example')).toMatchObject({ result: 'none', domain: 'huge.example' });
    expect(await dmarc('ann@mixed.example')).toMatchObject({ result: 'fail', policy: 'reject', disposition: 'reject' });
  });

  it('a temporary DNS failure is temperror, never a reject', async () => {
    const r = await dmarc('ann@servfail.example');
    expect(r.result).toBe('temperror');
    expect(r.disposition).toBeUndefined();
  });

  it('several author domains: the strictest outcome counts', async () => {
    const r = await evaluateDmarc({ headerFrom: ['me@nothing.example', 'boss@reject.example'], dkim: [pass('nothing.example')], resolver: mailauthResolver(dns.resolver) });
    expect(r).toMatchObject({ result: 'fail', domain: 'reject.example', disposition: 'reject' });
  });

  it('a From: author without a usable domain beside a real one fails closed (permerror, disposition reject), and asks nothing', async () => {
    const before = dns.server.queries.length;
    expect(await evaluateDmarc({ headerFrom: ['nobody', 'x@reject.example'], dkim: [], resolver: mailauthResolver(dns.resolver) })).toMatchObject({ result: 'permerror', disposition: 'reject' });
    expect(dns.server.queries.length).toBe(before);
    // with no usable domain at all there is nothing to forge: none
    expect(await evaluateDmarc({ headerFrom: ['nobody', 'x@-bad domain-'], dkim: [], resolver: mailauthResolver(dns.resolver) })).toMatchObject({ result: 'none' });
  });

  it('no From: at all is none: no domain is claimed', async () => {
    expect(await evaluateDmarc({ headerFrom: [], dkim: [], resolver: mailauthResolver(dns.resolver) })).toMatchObject({ result: 'none', comment: 'no From: domain' });
  });
});

describe('signed messages through checkAuth and the tests', () => {
  const run = async (raw: string, spf?: { result: 'pass' | 'fail'; domain: string }) => {
    const c = new SpamChecks(spamOptionsSchema.parse({}), dns.resolver, silentLogger, undefined);
    return c.authentication(Buffer.from(raw), spf);
  };

  it('signed by the From: domain: DKIM_VALID, DKIM_VALID_AU, DMARC_PASS', async () => {
    const r = await run(await sign(mail('Ann <ann@reject.example>'), { domain: 'reject.example', key: 'ed25519' }));
    expect(r.tests.map((t) => [t.name, t.score])).toEqual([
      ['DKIM_VALID', -0.1],
      ['DKIM_VALID_AU', -0.1],
      ['DMARC_PASS', -0.1],
    ]);
  });

  it('a forged From: of a p=reject domain signed by another domain: DKIM_VALID and DMARC_REJECT', async () => {
    const r = await run(await sign(mail('Bank <support@reject.example>'), { domain: 'signer.example' }));
    expect(r.tests.map((t) => [t.name, t.score])).toEqual([
      ['DKIM_VALID', -0.1],
      ['DMARC_REJECT', 5],
    ]);
    expect(r.dmarc).toMatchObject({ result: 'fail', disposition: 'reject' });
  });

  it('quarantine and none policies score DMARC_QUAR and DMARC_NONE; a broken signature DKIM_INVALID', async () => {
    const quar = await run(mail('ann@quar.example'));
    expect(quar.tests.map((t) => [t.name, t.score])).toEqual([['DMARC_QUAR', 3]]);
    const none = await run((await sign(mail('ann@none.example'), { domain: 'none.example' })).replace('Hello there.', 'Hello world.'));
    expect(none.tests.map((t) => [t.name, t.score])).toEqual([
      ['DKIM_INVALID', 0.1],
      ['DMARC_NONE', 0.1],
    ]);
  });

  it('our SPF pass aligns for an unsigned message', async () => {
    const r = await run(mail('ann@reject.example'), { result: 'pass', domain: 'reject.example' });
    expect(r.tests.map((t) => t.name)).toEqual(['DMARC_PASS']);
  });

  it('with dkim off, DMARC still runs on SPF alone and no key is asked', async () => {
    const c = new SpamChecks(spamOptionsSchema.parse({ dkim: false }), dns.resolver, silentLogger, undefined);
    const before = dns.server.queries.filter((q) => q.name.includes('_domainkey')).length;
    const r = await c.authentication(Buffer.from(await sign(mail('ann@reject.example'), { domain: 'reject.example' })), undefined);
    expect(r.dkim).toBeUndefined();
    expect(r.tests.map((t) => t.name)).toEqual(['DMARC_REJECT']);
    expect(dns.server.queries.filter((q) => q.name.includes('_domainkey')).length).toBe(before);
  });

  it('checkAuth with both off does nothing', async () => {
    const settings = { dkim: { enabled: false, maxSignatures: 5, scores: { valid: 0, validAuthor: 0, invalid: 0, none: 0 } }, dmarc: { enabled: false, scores: { pass: 0, reject: 0, quarantine: 0, none: 0, missing: 0 } } };
    expect(await checkAuth(Buffer.from(mail('a@reject.example')), settings, { dns: dns.resolver })).toEqual({});
  });
});
