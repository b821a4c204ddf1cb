/** header-text.ts: words for people, values for programs, comments. */
import { describe, expect, it } from 'vitest';
import { headerComment, headerText, headerValue, MAX_VALUE_LENGTH, printableAscii } from '../src/header-text.js';

describe('headerText (words for people)', () => {
  it('makes one trimmed line of printable ASCII with single spaces', () => {
    expect(headerText('  line\r\nX-Injected: yes\u0000 caf\u00e9\t ', 100)).toBe('line X-Injected: yes caf');
    expect(headerText('Listed\r\nsee https://bl.test/q?ip=127.0.0.2\u0007', 300)).toBe('Listed see https://bl.test/q?ip=127.0.0.2');
  });

  it('ends a text cut at max in "..." and stays within max', () => {
    expect(headerText('a'.repeat(500), 20)).toBe(`${'a'.repeat(17)}...`);
    expect(headerText('a'.repeat(20), 20)).toBe('a'.repeat(20));
  });
});

describe('headerValue (values for programs)', () => {
  it('replaces each character outside printable ASCII by "?", one for one, and trims nothing', () => {
    expect(printableAscii('a\r\nb\u00e9 ', 100)).toBe('a??b? ');
    expect(printableAscii('x'.repeat(300), 10)).toBe('x'.repeat(10));
  });

  it('writes a token or a dot-atom bare, anything else as a quoted-string', () => {
    expect(headerValue('ann@example.com', 'token')).toBe('ann@example.com');
    expect(headerValue('ann@example.com', 'dot-atom')).toBe('"ann@example.com"');
    expect(headerValue('ip4:192.0.2.0/24', 'dot-atom')).toBe('"ip4:192.0.2.0/24"');
    expect(headerValue('ab/c+d=e', 'token')).toBe('"ab/c+d=e"');
    expect(headerValue('ab/c+d=e', 'dot-atom')).toBe('ab/c+d=e');
    expect(headerValue('a"b\\c', 'token')).toBe('"a\\"b\\\\c"');
    expect(headerValue('', 'token')).toBe('""');
    expect(headerValue('bank.example\u0000', 'token')).toBe('"bank.example?"');
  });

  it('bounds the value', () => {
    expect(headerValue('h'.repeat(10_000), 'dot-atom')).toBe('h'.repeat(MAX_VALUE_LENGTH));
  });
});

describe('headerComment', () => {
  it('quotes parentheses and backslashes, on one line', () => {
    expect(headerComment('bad (very) bad\\\r\nX-Evil: 1', 120)).toBe('(bad \\(very\\) bad\\\\ X-Evil: 1)');
  });
});
