import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeaderSizeCheck, MAX_HEADER_SECTION } from '../../src/smtp/header-size.js';
import { splitAt } from './helpers.js';

function check(chunks: Buffer[], limit?: number): HeaderSizeCheck {
  const c = new HeaderSizeCheck(limit);
  for (const chunk of chunks) c.push(chunk);
  return c;
}

describe('HeaderSizeCheck', () => {
  it('the end of the header section is found however the chunks cut the empty line', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.array(fc.nat({ max: 600 }), { maxLength: 6 }), (fields, offsets) => {
        const head = Buffer.from(`${'X-F: v\r\n'.repeat(fields)}\r\nbody\r\n`);
        expect(check(splitAt(head, offsets), 64).state).toBe(fields * 8 + 2 <= 64 ? 'ended' : 'too-big');
      }),
    );
  });

  it('a body that starts with an empty line has an empty header section', () => {
    expect(check([Buffer.from('\r\nbody')], 4).state).toBe('ended');
    expect(check([Buffer.from('\r'), Buffer.from('\nbody')], 4).state).toBe('ended');
  });

  it('without an empty line: too big from the limit on (at exactly the limit removeHeaders() cannot tell whether its last field is whole)', () => {
    expect(check([Buffer.from('a: b\r\n'.repeat(10))], 100).state).toBe('open');
    expect(check([Buffer.from('a'.repeat(99))], 100).state).toBe('open');
    expect(check([Buffer.from('a'.repeat(100))], 100).tooBig).toBe(true);
    expect(check([Buffer.from('a: b\r\n'.repeat(20))], 100).tooBig).toBe(true);
  });

  it('the default limit is the part of a message plugins parse', () => {
    expect(MAX_HEADER_SECTION).toBe(256 * 1024);
  });
});
