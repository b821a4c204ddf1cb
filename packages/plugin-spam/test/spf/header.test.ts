/** receivedSpfHeader (RFC 7208 §9.1): the documented form, and nothing the client says can break it. */
import { describe, expect, it } from 'vitest';
import { receivedSpfHeader, type SpfQuery, type SpfResult } from '../../src/spf/index.js';

/** The key=value pairs after the comment, with quoted-strings unquoted. */
function pairs(value: string): Record<string, string> {
  const afterComment = value.slice(closingParen(value) + 1);
  const out: Record<string, string> = {};
  const re = /\s*([a-z-]+)=("(?:[^"\\]|\\.)*"|[^;\s]+);/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(afterComment))) {
    out[m[1]!] = m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/\\(.)/g, '$1') : m[2]!;
    last = re.lastIndex;
  }
  expect(afterComment.slice(last).trim(), 'nothing after the key-value list').toBe('');
  return out;
}

/** Index of the ")" that closes the comment opened after the result, honouring quoted-pairs. */
function closingParen(value: string): number {
  let depth = 0;
  for (let i = value.indexOf('('); i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === '(') depth++;
    else if (value[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced comment in ${value}`);
}

const query: SpfQuery = { ip: '192.0.2.1', sender: 'myname@example.com', helo: 'foo.example.com' };

describe('receivedSpfHeader', () => {
  it('gives the RFC 7208 §9.1 form', () => {
    const r: SpfResult = { result: 'pass', domain: 'example.com', identity: 'mailfrom', mechanism: 'ip4:192.0.2.0/24' };
    const value = receivedSpfHeader(r, query, 'mybox.example.org');
    expect(value).toBe(
      'pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender) ' +
        'receiver=mybox.example.org; client-ip=192.0.2.1; envelope-from="myname@example.com"; helo=foo.example.com; identity=mailfrom; mechanism="ip4:192.0.2.0/24";',
    );
  });

  it.each([
    ['fail', 'does not designate 192.0.2.1 as permitted sender'],
    ['softfail', 'domain of transitioning myname@example.com'],
    ['neutral', 'is neither permitted nor denied'],
    ['none', 'does not designate permitted sender hosts'],
    ['temperror', 'error in processing'],
    ['permerror', 'permanent error'],
  ] as const)('describes %s in the comment', (result, text) => {
    const value = receivedSpfHeader({ result, domain: 'example.com', problem: 'bad record' }, query, 'mx.test');
    expect(value.startsWith(`${result} (`)).toBe(true);
    expect(value).toContain(text);
    expect('problem' in pairs(value)).toBe(result === 'temperror' || result === 'permerror');
  });

  it('names the HELO identity and postmaster@helo for the null sender', () => {
    const value = receivedSpfHeader({ result: 'pass', domain: 'foo.example.com', identity: 'helo' }, { ...query, sender: '' }, 'mx.test');
    expect(value).toContain('domain of postmaster@foo.example.com designates');
    expect(pairs(value)).toEqual({ receiver: 'mx.test', 'client-ip': '192.0.2.1', helo: 'foo.example.com', identity: 'helo' });
  });

  it('quotes an IPv6 client-ip (not a dot-atom)', () => {
    const value = receivedSpfHeader({ result: 'pass', domain: 'example.com' }, { ...query, ip: '2001:db8::1' }, 'mx.test');
    expect(pairs(value)['client-ip']).toBe('2001:db8::1');
    expect(value).toContain('client-ip="2001:db8::1";');
  });

  it('lets no CR, LF or other control character through from sender, HELO, problem or receiver', () => {
    const hostile: SpfQuery = {
      ip: '192.0.2.1',
      sender: 'a\r\nX-Injected: yes\r\n@example.com',
      helo: 'evil\n\tX-Other: 1\0',
    };
    const r: SpfResult = { result: 'permerror', domain: 'example.com', problem: 'bad\r\nX-Problem: 1', mechanism: '-all\r\n' };
    const value = receivedSpfHeader(r, hostile, 'mx.test\r\nX-Receiver: 1');
    expect(value).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(value).toMatch(/^[\x20-\x7e]+$/);
    const kv = pairs(value);
    expect(kv['envelope-from']).toBe('a??X-Injected: yes??@example.com');
    expect(kv.helo).toBe('evil??X-Other: 1?');
  });

  it('keeps parentheses, backslashes and quotes from escaping the comment or a quoted-string', () => {
    const hostile: SpfQuery = { ip: '192.0.2.1', sender: 'x) receiver=forged; (\\"@example.com', helo: 'h") helo=forged; ("' };
    const value = receivedSpfHeader({ result: 'fail', domain: 'example.com' }, hostile, 'mx.test');
    const kv = pairs(value);
    expect(kv.receiver).toBe('mx.test');
    expect(kv['envelope-from']).toBe(hostile.sender);
    expect(kv.helo).toBe(hostile.helo);
    expect(Object.keys(kv)).toEqual(['receiver', 'client-ip', 'envelope-from', 'helo', 'identity']);
  });

  it('keeps the header short whatever the length of the inputs, and never throws on junk', () => {
    const value = receivedSpfHeader({ result: 'fail', domain: 'x' }, { ip: '192.0.2.1', sender: `${'a'.repeat(100_000)}@example.com`, helo: 'h'.repeat(100_000) }, 'mx.test');
    expect(value.length).toBeLessThan(998);
    expect(() => receivedSpfHeader({ result: 'pass', domain: 'x' }, { ip: undefined, sender: null, helo: 42 } as unknown as SpfQuery, '')).not.toThrow();
  });
});
