/**
 * The enhanced status code the relay reports for a next hop's reply (RFC 3463): the
 * reply's own code with the class of the outcome, or `<class>.0.0`, whatever the reply
 * holds (replies as the SMTP client keeps them, local errors, hostile text).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { enhancedStatus } from '../src/dsn.js';

/** Text from a next hop. */
const hostile = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.string16bits({ maxLength: 12 }),
  fc.array(fc.constantFrom('a', ' ', '\r', '\n', '\0', '\t', '\u010a', '5.1.1', '2.0.0', '.', '-'), { maxLength: 12 }).map((p) => p.join('')),
);
/** A reply as the SMTP client keeps it, or a local error. */
const diagnostic = fc.oneof(
  fc.tuple(fc.constantFrom('550 5.1.1 ', '451 4.7.1 ', '552 ', '250 2.0.0 ', ''), hostile).map(([code, text]) => code + text),
  hostile,
);

describe('enhancedStatus', () => {
  it('always a status code of the asked class (RFC 3463 syntax), whatever the reply', () => {
    fc.assert(
      fc.property(fc.oneof(diagnostic, fc.stringMatching(/^[0-9]{3}[ -][0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}( .*)?$/)), fc.constantFrom<4 | 5>(4, 5), (reply, klass) => {
        expect(enhancedStatus(reply, klass)).toMatch(new RegExp(`^${klass}\\.\\d{1,3}\\.\\d{1,3}$`));
      }),
      { numRuns: 1000 },
    );
  });

  // (fixed cases, not the implementation's own regular expression restated)
  it.each([
    ['550 5.1.1 <bob@dest.test>: unknown user', 5, '5.1.1'],
    ['550-5.7.1 first line of a multi-line reply', 5, '5.7.1'],
    ['451 4.7.1 greylisted', 4, '4.7.1'],
    ['550 4.2.2 class contradicts the reply: the outcome decides', 5, '5.2.2'],
    ['552 mailbox full (no enhanced code)', 5, '5.0.0'],
    ['550 5.1234.1 not a status code', 5, '5.0.0'],
    ['550 5.1.10 null MX', 5, '5.1.10'],
    ['connect ECONNREFUSED 127.0.0.1:25', 4, '4.0.0'],
    ['', 5, '5.0.0'],
    ['550 5.1.1x glued to a word', 5, '5.0.0'],
  ] as const)('%j as class %d: %s', (reply, klass, expected) => {
    expect(enhancedStatus(reply, klass)).toBe(expected);
  });
});
