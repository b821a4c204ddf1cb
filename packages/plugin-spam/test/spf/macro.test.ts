/** The macro expander (RFC 7208 §7), on the RFC's own examples (§7.4) and on bad input. */
import { describe, expect, it } from 'vitest';
import { SpfError } from '../../src/spf/errors.js';
import { dottedIp, parseClientIp, readableIp } from '../../src/spf/ip.js';
import { expandMacros, MAX_EXPANSION_LENGTH, parseMacroString, urlEscape, type MacroContext, type MacroValues } from '../../src/spf/macro.js';

function values(ip: string, overrides: Partial<MacroValues> = {}): MacroValues {
  const client = parseClientIp(ip)!;
  return {
    s: 'strong-bad@email.example.com',
    l: 'strong-bad',
    o: 'email.example.com',
    d: 'email.example.com',
    i: dottedIp(client),
    p: 'unknown',
    v: client.version === 4 ? 'in-addr' : 'ip6',
    h: 'mx.example.org',
    c: readableIp(client),
    r: 'receiver.example.net',
    t: '1700000000',
    ...overrides,
  };
}

function expand(text: string, ip = '192.0.2.3', context: MacroContext = 'domain', overrides: Partial<MacroValues> = {}): string {
  return expandMacros(parseMacroString(text, context), values(ip, overrides));
}

describe('SPF macro expansion: RFC 7208 §7.4 examples', () => {
  it.each([
    ['%{s}', 'strong-bad@email.example.com'],
    ['%{o}', 'email.example.com'],
    ['%{d}', 'email.example.com'],
    ['%{d4}', 'email.example.com'],
    ['%{d3}', 'email.example.com'],
    ['%{d2}', 'example.com'],
    ['%{d1}', 'com'],
    ['%{dr}', 'com.example.email'],
    ['%{d2r}', 'example.email'],
    ['%{l}', 'strong-bad'],
    ['%{l-}', 'strong.bad'],
    ['%{lr}', 'strong-bad'],
    ['%{lr-}', 'bad.strong'],
    ['%{l1r-}', 'strong'],
    ['%{ir}.%{v}._spf.%{d2}', '3.2.0.192.in-addr._spf.example.com'],
    ['%{lr-}.lp._spf.%{d2}', 'bad.strong.lp._spf.example.com'],
    ['%{lr-}.lp.%{ir}.%{v}._spf.%{d2}', 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com'],
    ['%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}', '3.2.0.192.in-addr.strong.lp._spf.example.com'],
    ['%{d2}.trusted-domains.example.net', 'example.com.trusted-domains.example.net'],
  ])('%s -> %s', (macro, expected) => {
    expect(expand(macro)).toBe(expected);
  });

  it('expands an IPv6 client as nibbles (the §7.4 IPv6 example)', () => {
    expect(expand('%{ir}.%{v}._spf.%{d2}', '2001:db8::cb01')).toBe(
      '1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com',
    );
  });
});

describe('SPF macro expansion: letters, transformers, delimiters, escapes', () => {
  it('treats an IPv4-mapped IPv6 client as IPv4 for i, c and v', () => {
    expect(expand('%{i} %{c} %{v}', '::ffff:192.0.2.3', 'explanation')).toBe('192.0.2.3 192.0.2.3 in-addr');
  });

  it('gives c in compressed lower case and i in full nibbles for IPv6', () => {
    expect(expand('%{c}', 'CAFE:BABE:0:0:0:0:0:1', 'explanation')).toBe('cafe:babe::1');
    expect(expand('%{i}', '2001:db8::1')).toBe('2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1');
  });

  it('expands c, r and t in explanations', () => {
    expect(expand('%{c} refused by %{r} at %{t}', '192.0.2.3', 'explanation')).toBe('192.0.2.3 refused by receiver.example.net at 1700000000');
  });

  it('splits on every delimiter given, and joins with dots', () => {
    expect(expand('%{l2r+-}.user.%{d2}', '192.0.2.3', 'domain', { l: 'foo-bar+zip+quux' })).toBe('bar.foo.user.example.com');
    expect(expand('%{l=_,/}', '192.0.2.3', 'domain', { l: 'a=b_c,d/e' })).toBe('a.b.c.d.e');
  });

  it('takes all parts when the digit transformer is larger than their number', () => {
    expect(expand('%{d99999999999999999999}')).toBe('email.example.com');
  });

  it('expands %%, %_ and %-', () => {
    expect(expand('a%%b%_c%-d.example.com')).toBe('a%b c%20d.example.com');
  });

  it('URL-escapes upper-case macros: everything outside RFC 3986 unreserved', () => {
    expect(expand('%{L}', '192.0.2.3', 'domain', { l: "~jack&jill=up-a_b3.c!*'()" })).toBe('~jack%26jill%3Dup-a_b3.c%21%2A%27%28%29');
    expect(urlEscape('é ')).toBe('%C3%A9%20');
    expect(expand('%{S}')).toBe('strong-bad%40email.example.com');
  });

  it('accepts an upper-case R transformer', () => {
    expect(expand('%{d2R}')).toBe('example.email');
  });
});

describe('SPF macro syntax errors are permerrors', () => {
  const permerror = (text: string, context: MacroContext = 'domain'): void => {
    let caught: unknown;
    try {
      parseMacroString(text, context);
    } catch (err) {
      caught = err;
    }
    expect(caught, text).toBeInstanceOf(SpfError);
    expect((caught as SpfError).result).toBe('permerror');
  };

  it.each(['%{x}', '%(ir).example.com', 'foo%.example.com', 'trailing%', '%{d0}', '%{d00}', '%{d', '%{}', '%{dd}', '%{d2x}', 'a b', 'tab\there', 'nul\0', 'é.example.com'])(
    'refuses %j in a domain-spec',
    (text) => permerror(text),
  );

  it('refuses the explanation-only letters c, r and t outside explanations', () => {
    for (const letter of ['c', 'r', 't', 'C', 'R', 'T']) permerror(`%{${letter}}.example.com`);
    expect(() => parseMacroString('%{c}%{r}%{t}', 'modifier')).not.toThrow();
  });

  it('allows spaces in explanations, but not control characters', () => {
    expect(() => parseMacroString('Not  allowed, see %{r}.', 'explanation')).not.toThrow();
    permerror('line\r\nInjected: yes', 'explanation');
  });

  it('refuses an expansion past the length cap instead of building it', () => {
    const tokens = parseMacroString('%{s}'.repeat(1000), 'domain');
    expect(() => expandMacros(tokens, values('192.0.2.3', { s: 'x'.repeat(100) }))).toThrow(/longer than/);
    expect(MAX_EXPANSION_LENGTH).toBeLessThan(100_000);
  });
});
