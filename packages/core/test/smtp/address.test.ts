import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeXtext,
  encodeXtext,
  formatAddress,
  isDotString,
  parseMailFrom,
  parseRcptTo,
  type Address,
} from '../../src/smtp/address.js';

const NO = { smtputf8: false };
const YES = { smtputf8: true };

const addr = (local: string, domain: string, address: string, literal = false): Address => ({ local, domain, literal, address });

describe('parseMailFrom: valid', () => {
  const cases: Array<[string, Address | null, Record<string, string | true>?, boolean?]> = [
    ['FROM:<a@b.example>', addr('a', 'b.example', 'a@b.example')],
    ['from:<a@b.example>', addr('a', 'b.example', 'a@b.example')],
    ['From:<A.B@Example.COM>', addr('A.B', 'Example.COM', 'A.B@Example.COM')],
    ['FROM: <a@b>', addr('a', 'b', 'a@b')],
    ['FROM:<>', null],
    ['FROM: <>', null],
    ['FROM:<> SIZE=100 BODY=8BITMIME', null, { SIZE: '100', BODY: '8BITMIME' }],
    ['FROM:<a@b>  size=10   body=7bit ', addr('a', 'b', 'a@b'), { SIZE: '10', BODY: '7bit' }],
    ['FROM:<a@b> SIZE', addr('a', 'b', 'a@b'), { SIZE: true }], // semantics (SIZE needs a value) is the engine's job
    ['FROM:<a@b> RET=HDRS ENVID=QQ314159+2Bx X-Foo-1=a:b;c', addr('a', 'b', 'a@b'), { RET: 'HDRS', ENVID: 'QQ314159+2Bx', 'X-FOO-1': 'a:b;c' }],
    ['FROM:<"john doe"@example.com>', addr('john doe', 'example.com', '"john doe"@example.com')],
    ['FROM:<"a\\"b"@x>', addr('a"b', 'x', '"a\\"b"@x')],
    ['FROM:<"a\\\\b"@x>', addr('a\\b', 'x', '"a\\\\b"@x')],
    ['FROM:<"\\a\\b"@x>', addr('ab', 'x', 'ab@x')],
    ['FROM:<"plain"@x>', addr('plain', 'x', 'plain@x')],
    ['FROM:<"a..b"@x>', addr('a..b', 'x', '"a..b"@x')],
    ['FROM:<".a"@x>', addr('.a', 'x', '".a"@x')],
    ['FROM:<""@x>', addr('', 'x', '""@x')],
    ['FROM:<"a>b"@x>', addr('a>b', 'x', '"a>b"@x')],
    ['FROM:<"<@>,:;[]"@x>', addr('<@>,:;[]', 'x', '"<@>,:;[]"@x')],
    ['FROM:<@a.example,@b.example:user@c.example>', addr('user', 'c.example', 'user@c.example')],
    ['FROM:<@a.example:user@c.example>', addr('user', 'c.example', 'user@c.example')],
    ['FROM:<u@[192.0.2.1]>', addr('u', '[192.0.2.1]', 'u@[192.0.2.1]', true)],
    ['FROM:<u@[0.0.0.0]>', addr('u', '[0.0.0.0]', 'u@[0.0.0.0]', true)],
    ['FROM:<u@[255.255.255.255]>', addr('u', '[255.255.255.255]', 'u@[255.255.255.255]', true)],
    ['FROM:<u@[IPv6:::1]>', addr('u', '[IPv6:::1]', 'u@[IPv6:::1]', true)],
    ['FROM:<u@[IPv6:2001:db8::1]>', addr('u', '[IPv6:2001:db8::1]', 'u@[IPv6:2001:db8::1]', true)],
    ['FROM:<u@[ipv6:::ffff:192.0.2.1]>', addr('u', '[ipv6:::ffff:192.0.2.1]', 'u@[ipv6:::ffff:192.0.2.1]', true)],
    ['FROM:<u@Example.COM.>', addr('u', 'Example.COM', 'u@Example.COM')],
    ['FROM:<u@localhost>', addr('u', 'localhost', 'u@localhost')],
    ['FROM:<u@1.2.3.4>', addr('u', '1.2.3.4', 'u@1.2.3.4')],
    ['FROM:<a.b+tag@x-y.example>', addr('a.b+tag', 'x-y.example', 'a.b+tag@x-y.example')],
    ["FROM:<!#$%&'*+-/=?^_`{|}~@x>", addr("!#$%&'*+-/=?^_`{|}~", 'x', "!#$%&'*+-/=?^_`{|}~@x")],
    ['FROM:<a@xn--bcher-kva.example>', addr('a', 'xn--bcher-kva.example', 'a@xn--bcher-kva.example')],
    ['FROM:<用户@例子.广告> SMTPUTF8', addr('用户', '例子.广告', '用户@例子.广告'), { SMTPUTF8: true }, true],
    ['FROM:<josé@example.com> SMTPUTF8 BODY=8BITMIME', addr('josé', 'example.com', 'josé@example.com'), { SMTPUTF8: true, BODY: '8BITMIME' }, true],
    ['FROM:<"jo sé"@bücher.de> smtputf8', addr('jo sé', 'bücher.de', '"jo sé"@bücher.de'), { SMTPUTF8: true }, true],
    ['FROM:<😀@x> SMTPUTF8', addr('😀', 'x', '😀@x'), { SMTPUTF8: true }, true],
    ['FROM:<a@b> SMTPUTF8', addr('a', 'b', 'a@b'), { SMTPUTF8: true }, true],
    [`FROM:<${'a'.repeat(64)}@b>`, addr('a'.repeat(64), 'b', `${'a'.repeat(64)}@b`)],
  ];
  for (const [args, address, params = {}, utf8 = false] of cases) {
    it(JSON.stringify(args), () => {
      const r = parseMailFrom(args, utf8 ? YES : NO);
      expect(r).toEqual({ address, params: new Map(Object.entries(params)) });
    });
  }

  it('path of exactly 256 octets is accepted, 257 refused', () => {
    const local = 'l'.repeat(64);
    const domainOf = (n: number) => ('d'.repeat(62) + '.').repeat(4).slice(0, n - 1) + 'x';
    const ok = `<${local}@${domainOf(256 - 66 - 1)}>`;
    expect(ok.length).toBe(256);
    expect('address' in parseMailFrom(`FROM:${ok}`, NO)).toBe(true);
    const bad = `<${local}@${domainOf(256 - 66)}>`;
    expect(bad.length).toBe(257);
    expect(parseMailFrom(`FROM:${bad}`, NO)).toEqual({ error: { code: 501, enhanced: '5.1.7', text: 'Path too long' } });
  });

  it('UTF-8 lengths are counted in octets', () => {
    const local = 'é'.repeat(32); // 64 octets
    expect('address' in parseMailFrom(`FROM:<${local}@x> SMTPUTF8`, YES)).toBe(true);
    expect(parseMailFrom(`FROM:<${local}e@x> SMTPUTF8`, YES)).toMatchObject({ error: { code: 501, enhanced: '5.1.7' } });
  });
});

type Err = [code: number, enhanced: string];
const SENDER: Err = [501, '5.1.7'];
const PARAM: Err = [501, '5.5.4'];
const UTF8: Err = [553, '5.6.7'];

describe('parseMailFrom: invalid', () => {
  const long = (n: number) => 'a'.repeat(n);
  const cases: Array<[string, Err, boolean?]> = [
    ['', PARAM],
    ['FROM', PARAM],
    ['FROM <a@b>', PARAM],
    ['TO:<a@b>', PARAM],
    [' FROM:<a@b>', PARAM],
    ['FROM:a@b', SENDER],
    ['FROM:', SENDER],
    ['FROM: ', SENDER],
    ['FROM:<a@b', SENDER],
    ['FROM:a@b>', SENDER],
    ['FROM:<<a@b>>', SENDER],
    ['FROM:<a@b>>', SENDER],
    ['FROM:  <a@b>', SENDER],
    ['FROM:\t<a@b>', SENDER],
    ['FROM:<@>', SENDER],
    ['FROM:<a@>', SENDER],
    ['FROM:<@b>', SENDER],
    ['FROM:<@b:>', SENDER],
    ['FROM:<@b,a@c>', SENDER],
    ['FROM:<@b:@c:a@d>', SENDER],
    ['FROM:<@[1.2.3.4]:a@d>', SENDER],
    ['FROM:<a>', SENDER],
    ['FROM:<postmaster>', SENDER],
    ['FROM:<a@-b.com>', SENDER],
    ['FROM:<a@b-.com>', SENDER],
    ['FROM:<a@b..com>', SENDER],
    ['FROM:<a@.b.com>', SENDER],
    ['FROM:<a@b.com..>', SENDER],
    ['FROM:<a@b_c.com>', SENDER],
    ['FROM:<.a@b>', SENDER],
    ['FROM:<a.@b>', SENDER],
    ['FROM:<a..b@c>', SENDER],
    ['FROM:<a b@c>', SENDER],
    ['FROM:< a@b>', SENDER],
    ['FROM:<a@b >', SENDER],
    ['FROM:<a@b c>', SENDER],
    ['FROM:<a@@b>', SENDER],
    ['FROM:<a@b@c>', SENDER],
    ['FROM:<a(comment)@b>', SENDER],
    ['FROM:<a,b@c>', SENDER],
    ['FROM:<a\0@b>', SENDER],
    ['FROM:<a@b\0>', SENDER],
    ['FROM:<"a\0"@b>', SENDER],
    ['FROM:<a\r\n@b>', SENDER],
    ['FROM:<"a\tb"@c>', SENDER],
    ['FROM:<a\x7f@b>', SENDER],
    ['FROM:<"a@b>', SENDER],
    ['FROM:<"a"b@c>', SENDER],
    ['FROM:<a"b"@c>', SENDER],
    ['FROM:<"a\\é"@c> SMTPUTF8', SENDER, true],
    ['FROM:<"a\\', SENDER],
    ['FROM:<"a"@>', SENDER],
    ['FROM:<"a">', SENDER],
    ['FROM:<a@[999.1.1.1]>', SENDER],
    ['FROM:<a@[1.2.3.256]>', SENDER],
    ['FROM:<a@[1.2.3]>', SENDER],
    ['FROM:<a@[1.2.3.4.5]>', SENDER],
    ['FROM:<a@[1.2.3.0004]>', SENDER],
    ['FROM:<a@[1..2.3]>', SENDER],
    ['FROM:<a@[]>', SENDER],
    ['FROM:<a@[1.2.3.4>', SENDER],
    ['FROM:<a@1.2.3.4]>', SENDER],
    ['FROM:<a@[1.2.3.4]x>', SENDER],
    ['FROM:<a@[IPv6:1::2::3]>', SENDER],
    ['FROM:<a@[IPv6:fe80::1%eth0]>', SENDER],
    ['FROM:<a@[IPv6:]>', SENDER],
    ['FROM:<a@[IPv6:1.2.3.4]>', SENDER],
    ['FROM:<a@[::1]>', SENDER],
    ['FROM:<a@[x-tag:content]>', SENDER],
    [`FROM:<${long(65)}@b>`, SENDER],
    [`FROM:<"${long(63)}"@b>`, SENDER],
    [`FROM:<a@${'b'.repeat(64)}.com>`, SENDER],
    [`FROM:<a@${('b'.repeat(50) + '.').repeat(6)}com>`, SENDER],
    ['FROM:<a@b>SIZE=10', SENDER],
    ['FROM:<a@b>x', SENDER],
    ['FROM:<a@b> SIZE=', PARAM],
    ['FROM:<a@b> SIZE==1', PARAM],
    ['FROM:<a@b> SIZE=1=2', PARAM],
    ['FROM:<a@b> =1', PARAM],
    ['FROM:<a@b> -SIZE=1', PARAM],
    ['FROM:<a@b> SI_ZE=1', PARAM],
    ['FROM:<a@b> SIZE=1 size=2', PARAM],
    ['FROM:<a@b> BODY=7BIT BODY=8BITMIME', PARAM],
    ['FROM:<a@b> SIZE=1\x01', PARAM],
    ['FROM:<a@b> SIZE=\x7f', PARAM],
    ['FROM:<a@b>\tSIZE=1', SENDER],
    ['FROM:<a@b> SIZE=1\tBODY=8BITMIME', PARAM],
    ['FROM:<a@b> X=é', PARAM],
    ['FROM:<a@b> SMTPUTF8=yes', PARAM, true],
    ['FROM:<josé@example.com>', UTF8, true],
    ['FROM:<josé@example.com>', UTF8, false],
    ['FROM:<a@bücher.de>', UTF8, true],
    ['FROM:<"jo sé"@x>', UTF8, true],
    ['FROM:<@bücher.de:a@x>', UTF8, true],
    ['FROM:<a\uFFFD@b> SMTPUTF8', SENDER, true],
    ['FROM:<a\u00a0b@c> SMTPUTF8', SENDER, true],
    ['FROM:<a@b\u200bc> SMTPUTF8', SENDER, true],
    ['FROM:<a\u0085@b> SMTPUTF8', SENDER, true],
    ['FROM:<a\ud800@b> SMTPUTF8', SENDER, true],
    ['FROM:<a\udc00b@b> SMTPUTF8', SENDER, true],
    ['FROM:<a@\u00e9-> SMTPUTF8', SENDER, true],
    ['FROM:<a@-\u00e9> SMTPUTF8', SENDER, true],
  ];
  for (const [args, [code, enhanced], utf8 = false] of cases) {
    it(`${JSON.stringify(args)} → ${code} ${enhanced}`, () => {
      const r = parseMailFrom(args, utf8 ? YES : NO);
      expect(r).toHaveProperty('error');
      if ('error' in r) expect([r.error.code, r.error.enhanced]).toEqual([code, enhanced]);
    });
  }

  it('SMTPUTF8 parameter when the server does not advertise it → 555 5.5.4', () => {
    expect(parseMailFrom('FROM:<josé@x> SMTPUTF8', NO)).toEqual({
      error: { code: 555, enhanced: '5.5.4', text: 'SMTPUTF8 not supported' },
    });
    expect(parseMailFrom('FROM:<a@x> SMTPUTF8', NO)).toMatchObject({ error: { code: 555, enhanced: '5.5.4' } });
  });

  it('error texts', () => {
    expect(parseMailFrom('FROM:a@b', NO)).toEqual({ error: { code: 501, enhanced: '5.1.7', text: 'Bad sender address syntax' } });
    expect(parseMailFrom(`FROM:<${long(65)}@b>`, NO)).toEqual({ error: { code: 501, enhanced: '5.1.7', text: 'Local part too long' } });
    expect(parseMailFrom('FROM:<josé@b>', YES)).toEqual({
      error: { code: 553, enhanced: '5.6.7', text: 'Non-ASCII address requires SMTPUTF8' },
    });
    expect(parseMailFrom('FROM:<a@b> SIZE=1 SIZE=2', NO)).toEqual({
      error: { code: 501, enhanced: '5.5.4', text: 'Conflicting values for parameter SIZE' },
    });
    // An exact repeat (Python's send_message with mail_options=['SMTPUTF8'] sends one) is accepted.
    const repeated = parseMailFrom('FROM:<a@b> SMTPUTF8 SMTPUTF8 BODY=8BITMIME', YES);
    expect('error' in repeated).toBe(false);
  });
});

const RCPT: Err = [501, '5.1.3'];

describe('parseRcptTo', () => {
  const valid: Array<[string, Address, boolean, Record<string, string | true>?, boolean?]> = [
    ['TO:<a@b.example>', addr('a', 'b.example', 'a@b.example'), false],
    ['to: <a@b>', addr('a', 'b', 'a@b'), false],
    ['TO:<postmaster>', addr('postmaster', '', 'postmaster'), true],
    ['TO:<Postmaster>', addr('postmaster', '', 'postmaster'), true],
    ['TO:<POSTMASTER> NOTIFY=NEVER', addr('postmaster', '', 'postmaster'), true, { NOTIFY: 'NEVER' }],
    ['TO:<Postmaster@Example.com>', addr('Postmaster', 'Example.com', 'Postmaster@Example.com'), true],
    ['TO:<"postmaster"@x>', addr('postmaster', 'x', 'postmaster@x'), true],
    ['TO:<postmaster@[127.0.0.1]>', addr('postmaster', '[127.0.0.1]', 'postmaster@[127.0.0.1]', true), true],
    ['TO:<postmaster.x@y>', addr('postmaster.x', 'y', 'postmaster.x@y'), false],
    ['TO:<@relay.example:u@x>', addr('u', 'x', 'u@x'), false],
    [
      'TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b',
      addr('a', 'b', 'a@b'),
      false,
      { NOTIFY: 'SUCCESS,FAILURE', ORCPT: 'rfc822;a+40b' },
    ],
    ['TO:<用户@例子.广告>', addr('用户', '例子.广告', '用户@例子.广告'), false, {}, true],
    ['TO:<a@b> ORCPT=utf-8;用户@x', addr('a', 'b', 'a@b'), false, { ORCPT: 'utf-8;用户@x' }, true],
  ];
  for (const [args, address, postmaster, params = {}, utf8 = false] of valid) {
    it(`valid ${JSON.stringify(args)}`, () => {
      expect(parseRcptTo(args, utf8 ? YES : NO)).toEqual({ address, params: new Map(Object.entries(params)), postmaster });
    });
  }

  const invalid: Array<[string, Err, boolean?]> = [
    ['', PARAM],
    ['TO', PARAM],
    ['TO <a@b>', PARAM],
    ['FROM:<a@b>', PARAM],
    ['TO:a@b', RCPT],
    ['TO:<a@b', RCPT],
    ['TO:<>', RCPT],
    ['TO:<"postmaster">', RCPT],
    ['TO:<@a:postmaster>', RCPT],
    ['TO:<postmaster.>', RCPT],
    ['TO:<postmistress>', RCPT],
    ['TO:<@>', RCPT],
    ['TO:<a@>', RCPT],
    ['TO:<@b>', RCPT],
    ['TO:<a@-b.com>', RCPT],
    ['TO:<a b@c>', RCPT],
    ['TO:<a\0b@c>', RCPT],
    ['TO:<a@[999.1.1.1]>', RCPT],
    [`TO:<${'a'.repeat(65)}@b>`, RCPT],
    ['TO:<a@b>NOTIFY=NEVER', RCPT],
    ['TO:<a@b> NOTIFY=', PARAM],
    ['TO:<a@b> NOTIFY=NEVER notify=SUCCESS', PARAM],
    ['TO:<用户@例子.广告>', UTF8],
    ['TO:<a@b> ORCPT=utf-8;用户@x', PARAM],
    ['TO:<a\uFFFD@b>', RCPT, true],
  ];
  for (const [args, [code, enhanced], utf8 = false] of invalid) {
    it(`invalid ${JSON.stringify(args)} → ${code} ${enhanced}`, () => {
      const r = parseRcptTo(args, utf8 ? YES : NO);
      expect(r).toHaveProperty('error');
      if ('error' in r) expect([r.error.code, r.error.enhanced]).toEqual([code, enhanced]);
    });
  }

  it('error texts', () => {
    expect(parseRcptTo('TO:<>', NO)).toEqual({ error: { code: 501, enhanced: '5.1.3', text: 'Bad recipient address syntax' } });
    expect(parseRcptTo('TO:x', NO)).toEqual({ error: { code: 501, enhanced: '5.1.3', text: 'Bad recipient address syntax' } });
  });
});

describe('formatAddress / isDotString', () => {
  it.each([
    ['a', 'x', 'a@x'],
    ['a.b', 'x', 'a.b@x'],
    ['a b', 'x', '"a b"@x'],
    ['a"b', 'x', '"a\\"b"@x'],
    ['a\\b', 'x', '"a\\\\b"@x'],
    ['.a', 'x', '".a"@x'],
    ['a.', 'x', '"a."@x'],
    ['a..b', 'x', '"a..b"@x'],
    ['', 'x', '""@x'],
    ['josé', 'bücher.de', 'josé@bücher.de'],
    ['postmaster', '', 'postmaster'],
    ['a@b', '[1.2.3.4]', '"a@b"@[1.2.3.4]'],
  ])('formatAddress(%j, %j) = %j', (local, domain, want) => {
    expect(formatAddress(local, domain)).toBe(want);
  });

  it('isDotString', () => {
    expect(isDotString('a.b-c')).toBe(true);
    expect(isDotString('')).toBe(false);
    expect(isDotString('a b')).toBe(false);
    expect(isDotString('a\u00a0b')).toBe(false);
  });
});

describe('xtext', () => {
  it.each([
    ['rfc822;a+40b', 'rfc822;a@b'],
    ['plain', 'plain'],
    ['+2B+3D', '+='],
    ['+c3+a9', 'é'],
    ['', ''],
  ])('decodeXtext(%j) = %j', (x, want) => {
    expect(decodeXtext(x)).toBe(want);
  });

  it.each(['+', '+2', '+2G', 'a=b', 'a b', 'é', 'a\0', '+4'])('decodeXtext(%j) = null', (x) => {
    expect(decodeXtext(x)).toBeNull();
  });

  it('encodeXtext', () => {
    expect(encodeXtext('a@b+c=d e')).toBe('a@b+2Bc+3Dd+20e');
    expect(encodeXtext('é')).toBe('+C3+A9');
  });

  it('property: decode(encode(s)) === s', () => {
    fc.assert(
      fc.property(fc.fullUnicodeString(), (str) => {
        expect(decodeXtext(encodeXtext(str))).toBe(str);
      }),
    );
  });

  it('property: decodeXtext never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (str) => {
        decodeXtext(str);
      }),
    );
  });
});

// ---------------------------------------------------------------------------
// Properties

const tricky = fc.constantFrom(
  '<', '>', '@', '"', '\\', '.', ':', ',', '[', ']', ' ', '  ', '=', '-', '+', 'a', 'Z', '0', '9',
  'é', '用', '😀', '\0', '\t', '\r', '\n', '\u00a0', '\uFFFD', '\ud800', 'IPv6:', '::1', '1.2.3.4',
  'postmaster', 'SMTPUTF8', 'SIZE=1', '(', ')', 'x'.repeat(70),
);
const trickyString = fc.array(tricky, { maxLength: 30 }).map((a) => a.join(''));

// Grammar-shaped arguments (mostly valid), optionally mutated with tricky tokens.
const atom = fc.array(fc.constantFrom('a', 'Z', '0', '-', '+', '=', '!', '~', 'é', '用', '😀', 'a', 'b', 'c'), { minLength: 1, maxLength: 6 }).map((a) => a.join(''));
const dotString = fc.array(atom, { minLength: 1, maxLength: 3 }).map((a) => a.join('.'));
const quoted = fc
  .array(fc.constantFrom('a', ' ', '.', '@', '\\\\', '\\"', '\\a', '<', '>', ',', 'é', '\u00a0', '\t'), { maxLength: 8 })
  .map((a) => `"${a.join('')}"`);
const dlabel = fc.array(fc.constantFrom('a', 'b', 'c', '0', '-', 'é'), { minLength: 1, maxLength: 5 }).map((a) => a.join(''));
const gDomain = fc.oneof(
  fc.array(dlabel, { minLength: 1, maxLength: 3 }).map((a) => a.join('.')),
  fc.array(dlabel, { minLength: 1, maxLength: 3 }).map((a) => a.join('.') + '.'),
  fc.tuple(fc.nat(300), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => `[${o.join('.')}]`),
  fc.constantFrom('[IPv6:::1]', '[ipv6:2001:db8::1]', '[IPv6:::ffff:1.2.3.4]', '[IPv6:1::2::3]', '[tag:x]'),
);
const route = fc.oneof(
  fc.constant(''),
  fc.array(gDomain, { minLength: 1, maxLength: 2 }).map((ds) => ds.map((d) => '@' + d).join(',') + ':'),
);
const param = fc.oneof(
  fc.constantFrom('SIZE=10', 'BODY=8BITMIME', 'SMTPUTF8', 'smtputf8', 'NOTIFY=NEVER', 'ORCPT=rfc822;a+40b', 'X=é', 'A=', '=B', 'SIZE=1=2'),
);
const grammarArgs = fc
  .tuple(
    fc.constantFrom('FROM:', 'from:', 'TO:', 'to:', 'FROM: ', 'TO: '),
    route,
    fc.oneof(dotString, quoted, fc.constantFrom('postmaster', 'PostMaster', '')),
    fc.oneof({ weight: 5, arbitrary: gDomain.map((d) => '@' + d) }, { weight: 1, arbitrary: fc.constant('') }),
    fc.array(param, { maxLength: 3 }).map((ps) => ps.map((x) => ' ' + x).join('')),
    fc.oneof(fc.constant([]), fc.array(fc.tuple(fc.nat(), fc.nat(2), tricky), { maxLength: 2 })),
  )
  .map(([verb, r, local, dom, ps, muts]) => {
    let str = `${verb}<${r}${local}${dom}>${ps}`;
    for (const [pos, op, tok] of muts) {
      const p = pos % (str.length + 1);
      str = op === 0 ? str.slice(0, p) + tok + str.slice(p) : op === 1 ? str.slice(0, p) + str.slice(p + 1) : str.slice(0, p) + tok + str.slice(p + 1);
    }
    return str;
  });

const anyArgs = fc.oneof(
  { weight: 4, arbitrary: grammarArgs },
  fc.string({ unit: 'binary' }),
  fc.fullUnicodeString(),
  trickyString.map((t) => 'FROM:<' + t),
  trickyString.map((t) => 'TO:<' + t),
  trickyString.map((t) => 'FROM:' + t),
  trickyString.map((t) => 'TO:' + t),
);

function assertReparses(a: Address): void {
  const mail = parseMailFrom(`FROM:<${a.address}> SMTPUTF8`, YES);
  if (a.domain !== '') expect(mail).toEqual({ address: a, params: new Map([['SMTPUTF8', true]]) });
  const rcpt = parseRcptTo(`TO:<${a.address}>`, YES);
  expect(rcpt).toHaveProperty('address');
  if ('address' in rcpt) expect(rcpt.address).toEqual(a);
}

describe('address parser properties', () => {
  it('(c) never throws on random input; a canonical address parses back to the same address', () => {
    fc.assert(
      fc.property(anyArgs, fc.boolean(), (args, utf8) => {
        for (const r of [parseMailFrom(args, { smtputf8: utf8 }), parseRcptTo(args, { smtputf8: utf8 })]) {
          if ('error' in r) {
            expect(r.error.text).not.toBe('Internal parser error');
            expect([501, 553, 555]).toContain(r.error.code);
          } else if (r.address) {
            assertReparses(r.address);
          }
        }
      }),
      { numRuns: 10000 },
    );
  });

  // Any local part made of allowed characters, formatted canonically, parses back to itself.
  const localChar = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    fc.constantFrom('.', '"', '\\', ' ', 'é', '用', '😀', '\u00a0'),
  );
  const label = fc
    .array(fc.constantFrom('a', 'z', '0', '9', '-', 'é'), { minLength: 1, maxLength: 10 })
    .map((a) => a.join(''))
    .filter((l) => !l.startsWith('-') && !l.endsWith('-'));
  const domain = fc.oneof(
    fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.')),
    fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => `[${o.join('.')}]`),
    fc.constantFrom('[IPv6:::1]', '[IPv6:2001:db8::ff00:42:8329]'),
  );

  it('(c) formatAddress output round-trips for arbitrary local parts', () => {
    fc.assert(
      fc.property(fc.array(localChar, { maxLength: 20 }).map((a) => a.join('')), domain, (local, dom) => {
        const text = formatAddress(local, dom);
        const r = parseMailFrom(`FROM:<${text}> SMTPUTF8`, YES);
        const localOctets = Buffer.byteLength(text) - Buffer.byteLength(dom) - 1;
        if (localOctets > 64) {
          expect(r).toMatchObject({ error: { code: 501, enhanced: '5.1.7', text: 'Local part too long' } });
          return;
        }
        expect(r).toHaveProperty('address');
        if ('address' in r && r.address) {
          expect(r.address.local).toBe(local);
          expect(r.address.domain).toBe(dom);
          expect(r.address.address).toBe(text);
          expect(r.address.literal).toBe(dom.startsWith('['));
          assertReparses(r.address);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
