/**
 * Hostile messages for DKIM/DMARC: many signatures, l= and absurd tag values, garbage
 * keys, huge header blocks and signature fields. Nothing may crash, and the work (DNS
 * queries, mailauth's parsing) stays bounded by the limits, not by the message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type DnsResolver } from '@mailgate/core';
import type { TestDnsServer, TestZone } from '@mailgate/core/testing';
import { MAX_HEADER_LINES, mailauthResolver, verifyDkim } from '../src/auth/index.js';
import { SpamChecks } from '../src/checks.js';
import { spamOptionsSchema } from '../src/options.js';
import { ED25519_RECORD, mail, sign, startAuthDns } from './auth-helpers.js';

const selectors: TestZone = {};
for (let i = 0; i < 50; i++) selectors[`s${i}._domainkey.many.example`] = { TXT: [ED25519_RECORD] };

let dns: { server: TestDnsServer; resolver: DnsResolver };
beforeAll(async () => {
  dns = await startAuthDns({ ...selectors, 'drop._domainkey.signer.example': { TXT: [ED25519_RECORD], drop: true } });
});
afterAll(async () => {
  await dns.server.close();
});

const keyQueries = (): string[] => dns.server.queries.filter((q) => q.name.toLowerCase().includes('._domainkey.')).map((q) => q.name.toLowerCase());
const verify = (raw: string | Buffer, maxSignatures = 5) => verifyDkim(Buffer.from(raw), { resolver: mailauthResolver(dns.resolver), maxSignatures });

describe('many signatures', () => {
  it('50 DKIM-Signature fields: only the first 5 are verified, 5 keys asked', async () => {
    const signers = Array.from({ length: 50 }, (_, i) => ({ domain: 'many.example', selector: `s${i}`, key: 'ed25519' as const }));
    const raw = await sign(mail('ann@many.example'), ...signers);
    const before = keyQueries().length;
    const check = await verify(raw);
    expect(check.total).toBe(50);
    expect(check.skipped).toBe(45);
    expect(check.signatures.map((s) => [s.result, s.selector])).toEqual([0, 1, 2, 3, 4].map((i) => ['pass', `s${i}`]));
    const asked = keyQueries().slice(before);
    expect(new Set(asked)).toEqual(new Set([0, 1, 2, 3, 4].map((i) => `s${i}._domainkey.many.example`)));
  });

  it('maxSignatures 1 verifies only the topmost', async () => {
    const raw = await sign(mail('ann@many.example'), { domain: 'many.example', selector: 's7', key: 'ed25519' }, { domain: 'many.example', selector: 's8', key: 'ed25519' });
    const check = await verify(raw, 1);
    expect(check.signatures.map((s) => s.selector)).toEqual(['s7']);
  });
});

describe('tag values', () => {
  it('l= shorter than the body passes, but says part of the body is unsigned (RFC 6376 §8.2)', async () => {
    const raw = (await sign(mail('ann@signer.example', 'Short.\r\n'), { domain: 'signer.example', maxBodyLength: 8 })) + 'Appended by someone else.\r\n';
    const check = await verify(raw);
    expect(check.signatures[0]).toMatchObject({ result: 'pass', partialBody: true });
  });

  it('absurd l=, t=, x= values and broken signatures give results, not crashes', async () => {
    const signed = await sign(mail('ann@signer.example'), { domain: 'signer.example' });
    const absurd = signed.replace(/;\s*bh=/, '; l=99999999999999999999999; t=-1; x=abc; bh=');
    const junk = [
      'DKIM-Signature: v=1; a=rsa-sha256; d=; s=; b=',
      'DKIM-Signature: ;;;;====;;',
      'DKIM-Signature: a=ed25519-sha256; d=signer.example; s=ed; bh=!!!; b=%%%; l=-1; h=from',
      `DKIM-Signature: v=1; a=rsa-sha256; d=signer.example; s=rsa; h=from; bh=${'A'.repeat(3000)}; b=${'/'.repeat(5000)}`,
    ];
    expect(absurd).toContain('x=abc');
    const first = await verify(absurd);
    expect(['fail', 'neutral', 'permerror']).toContain(first.signatures[0]!.result);
    const second = await verify(junk.join('\r\n') + '\r\n' + mail('ann@signer.example'));
    expect(second.signatures).toHaveLength(4);
    expect(second.signatures.every((s) => s.result !== 'pass')).toBe(true);
  });
});

describe('size', () => {
  it(`a header block of more than ${MAX_HEADER_LINES} lines is not verified and asks nothing`, async () => {
    const signed = await sign(mail('ann@signer.example'), { domain: 'signer.example' });
    const raw = 'X-Filler: a\r\n' + ' folded\r\n'.repeat(50_000) + signed;
    const before = keyQueries().length;
    const check = await verify(raw);
    expect(check.signatures).toEqual([{ result: 'neutral', comment: expect.stringMatching(/not verified/) }]);
    expect(keyQueries().length).toBe(before);
  });

  it('a signature field with 100 000 names in h= is not handed to mailauth', async () => {
    const huge = `DKIM-Signature: v=1; a=rsa-sha256; d=signer.example; s=rsa; bh=AAAA; h=${'zz:'.repeat(100_000)}from; b=AAAA`;
    const check = await verify(huge + '\r\n' + mail('ann@signer.example'));
    expect(check.signatures).toEqual([{ result: 'neutral', comment: expect.stringMatching(/longer than/) }]);
  });
});

describe('waiting', () => {
  it('the caller\'s signal stops the wait for a key server that never answers', async () => {
    const checks = new SpamChecks(spamOptionsSchema.parse({ dnsTimeout: '30s' }), dns.resolver, silentLogger, undefined);
    const raw = Buffer.from(await sign(mail('ann@signer.example'), { domain: 'signer.example', selector: 'drop', key: 'ed25519' }));
    const controller = new AbortController();
    const running = checks.authentication(raw, undefined, { signal: controller.signal });
    await new Promise((r) => setImmediate(r));
    controller.abort(new Error('client gone'));
    await expect(running).rejects.toThrow('client gone');
  });

  it('a key server that never answers costs at most dnsTimeout: then no DKIM/DMARC points', async () => {
    const slowDns = new (dns.resolver.constructor as typeof import('@mailgate/core').DnsResolver)({ servers: [dns.server.address], timeout: 60_000, retries: 1 });
    const checks = new SpamChecks(spamOptionsSchema.parse({ dnsTimeout: '200ms' }), slowDns, silentLogger, undefined);
    const raw = Buffer.from(await sign(mail('ann@signer.example'), { domain: 'signer.example', selector: 'drop', key: 'ed25519' }));
    expect(await checks.authentication(raw, undefined)).toEqual({ tests: [] });
  });
});
