/** The SPF record parser (RFC 7208 §4.5, §4.6, §5, §6, §12), including hostile records. */
import { describe, expect, it } from 'vitest';
import { SpfError } from '../../src/spf/errors.js';
import { isSpfRecord, parseSpfRecord } from '../../src/spf/record.js';

function parseError(text: string): string {
  try {
    parseSpfRecord(text);
  } catch (err) {
    expect(err).toBeInstanceOf(SpfError);
    return (err as SpfError).result;
  }
  return 'parsed';
}

describe('SPF record selection', () => {
  it.each([
    ['v=spf1', true],
    ['v=spf1 -all', true],
    ['V=SpF1 ~all', true],
    ['v=spf10', false],
    ['v=spf1-all', false],
    ['v=spf2.0/pra -all', false],
    [' v=spf1 -all', false],
    ['spf1', false],
  ])('%j is an SPF record: %s', (text, expected) => {
    expect(isSpfRecord(text)).toBe(expected);
  });
});

describe('SPF record parser', () => {
  it('reads every mechanism with its qualifier, domain and dual CIDR', () => {
    const r = parseSpfRecord('v=spf1 +all -include:_spf.example.com ~a ?a:x.example.com/24//64 mx/28 mx:m.example.com//48 ptr ptr:example.com ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.bl.example.com');
    expect(r.directives.map((d) => [d.qualifier, d.mechanism.kind, d.text])).toEqual([
      ['+', 'all', '+all'],
      ['-', 'include', '-include:_spf.example.com'],
      ['~', 'a', '~a'],
      ['?', 'a', '?a:x.example.com/24//64'],
      ['+', 'mx', 'mx/28'],
      ['+', 'mx', 'mx:m.example.com//48'],
      ['+', 'ptr', 'ptr'],
      ['+', 'ptr', 'ptr:example.com'],
      ['+', 'ip4', 'ip4:192.0.2.0/24'],
      ['+', 'ip6', 'ip6:2001:db8::/32'],
      ['+', 'exists', 'exists:%{i}.bl.example.com'],
    ]);
    const a = r.directives[3]!.mechanism;
    expect(a.kind === 'a' && [a.cidr4, a.cidr6]).toEqual([24, 64]);
    const mx = r.directives[4]!.mechanism;
    expect(mx.kind === 'mx' && [mx.cidr4, mx.cidr6]).toEqual([28, 128]);
  });

  it('takes a "/" inside a domain-spec as part of the name unless it ends as a CIDR', () => {
    const r = parseSpfRecord('v=spf1 a:foo:bar/baz.example.com a:foo.example.com/24');
    const [first, second] = r.directives.map((d) => d.mechanism);
    expect(first?.kind === 'a' && first.domain?.map((t) => (t.kind === 'literal' ? t.text : '')).join('')).toBe('foo:bar/baz.example.com');
    expect(second?.kind === 'a' && second.cidr4).toBe(24);
  });

  it('reads redirect= and exp= (any case), and ignores unknown modifiers', () => {
    const r = parseSpfRecord('v=spf1 Redirect=_spf.example.com EXP=explain.%{d} default=pass moo.cow-far_out=man:dog/cat');
    expect(r.redirect?.text).toBe('Redirect=_spf.example.com');
    expect(r.exp).toBeDefined();
    expect(r.directives).toEqual([]);
  });

  it('accepts several spaces between terms and a trailing space', () => {
    expect(parseSpfRecord('v=spf1  a   -all ').directives).toHaveLength(2);
  });

  it.each([
    'v=spf1 -all moo',
    'v=spf1 -all.',
    'v=spf1 -all:foo',
    'v=spf1 -all/8',
    'v=spf1 ptr/0',
    'v=spf1 ptr:',
    'v=spf1 a:',
    'v=spf1 a/33',
    'v=spf1 a//129',
    'v=spf1 a/24/64',
    'v=spf1 a/032',
    'v=spf1 a:foo-bar',
    'v=spf1 a:abc.123',
    'v=spf1 a:museum',
    'v=spf1 a:museum.',
    'v=spf1 a:example.-com',
    'v=spf1 a:example.com:8080',
    'v=spf1 include',
    'v=spf1 include:',
    'v=spf1 include:example.com/24',
    'v=spf1 exists',
    'v=spf1 exists:example.com/24',
    'v=spf1 ip4',
    'v=spf1 ip4:1.2.3',
    'v=spf1 ip4:1.2.3.04',
    'v=spf1 ip4:1.2.3.4/33',
    'v=spf1 ip4:1.2.3.4//32',
    'v=spf1 ip4:1.2.3.4:8080',
    'v=spf1 ip6',
    'v=spf1 ip6::CAFE::BABE',
    'v=spf1 ip6:::1/129',
    'v=spf1 ip6:::1//64',
    'v=spf1 ip6:fe80::1%eth0',
    'v=spf1 redirect=a.example.com redirect=b.example.com',
    'v=spf1 exp=a.example.com exp=b.example.com',
    'v=spf1 redirect=',
    'v=spf1 exp=',
    'v=spf1 exp=%{r}.example.com',
    'v=spf1 redirect:example.com',
    'v=spf1 =all',
    'v=spf1 1up=foo',
    'v=spf1 foo=%abc',
    'v=spf1 moo.cow/far_out=man:dog/cat',
    'v=spf1 a:ctrl.example.com\rptr -all',
    'v=spf1 ip4:192.0.2.5\n include:x.example.com',
    'v=spf1\t-all',
    'v=spf1 a:\u00ef\u00bb\u00bfgarbage.example.net',
    'v=spf1 a:foo.example.com\0',
    'v=spf1 +-all',
    'v=spf1 -',
  ])('%j is a permerror', (text) => {
    expect(parseError(text)).toBe('permerror');
  });
});

describe('SPF record parser: hostile records', () => {
  it('parses 10,000 terms in linear time', () => {
    const record = `v=spf1 ${Array.from({ length: 10_000 }, (_, i) => `ip4:10.${(i >> 8) & 255}.${i & 255}.0/24`).join(' ')} -all`;
    const started = performance.now();
    expect(parseSpfRecord(record).directives).toHaveLength(10_001);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('parses a 64 KiB record, and finds an error at its very end', () => {
    const body = Array.from({ length: 6_000 }, () => 'a:x.example.com').join(' ');
    expect(parseSpfRecord(`v=spf1 ${body}`).directives.length).toBe(6_000);
    expect(parseError(`v=spf1 ${body} bogus`)).toBe('permerror');
  });

  it('does not backtrack on long runs of slashes, digits and percent signs', () => {
    const started = performance.now();
    expect(parseError(`v=spf1 a:${'/1'.repeat(30_000)}`)).toBe('permerror');
    expect(parseError(`v=spf1 a:x.example.com${'/'.repeat(30_000)}1`)).toBe('permerror');
    expect(parseError(`v=spf1 exists:${'%{'.repeat(20_000)}`)).toBe('permerror');
    expect(parseError(`v=spf1 exists:%{d${'9'.repeat(30_000)}}.example.com`)).toBe('parsed');
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
