import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseCommandLine } from '../../src/smtp/command-line.js';

describe('parseCommandLine', () => {
  it.each([
    ['MAIL FROM:<a@b> SIZE=10', 'MAIL', 'FROM:<a@b> SIZE=10'],
    ['mail from:<a@b>', 'MAIL', 'from:<a@b>'],
    ['MAIL FROM: <a@b>', 'MAIL', 'FROM: <a@b>'],
    ['RCPT TO:<x@y>   ', 'RCPT', 'TO:<x@y>'],
    ['QUIT', 'QUIT', ''],
    ['quit   ', 'QUIT', ''],
    ['NOOP\r\n', 'NOOP', ''],
    ['EHLO client.example\r\n', 'EHLO', 'client.example'],
    ['EHLO client.example \t ', 'EHLO', 'client.example'],
    ['DATA ', 'DATA', ''],
    ['STARTTLS', 'STARTTLS', ''],
    ['AUTH PLAIN AGFAAGI=', 'AUTH', 'PLAIN AGFAAGI='],
    ['MAIL  FROM:<a@b>', 'MAIL', ' FROM:<a@b>'],
    [' MAIL FROM:<a@b>', '', 'MAIL FROM:<a@b>'],
    ['', '', ''],
    ['   ', '', ''],
    ['HELO\tx', 'HELO\tX', ''],
    ['VRFY "a b"', 'VRFY', '"a b"'],
  ])('%j → %j %j', (line, verb, args) => {
    expect(parseCommandLine(line)).toEqual({ verb, args });
  });

  it('accepts Buffers (UTF-8)', () => {
    expect(parseCommandLine(Buffer.from('rcpt TO:<用户@例子.广告>\r\n', 'utf8'))).toEqual({ verb: 'RCPT', args: 'TO:<用户@例子.广告>' });
    expect(parseCommandLine(Buffer.from([0x6d, 0x61, 0x69, 0x6c, 0x20, 0xff]))).toEqual({ verb: 'MAIL', args: '\uFFFD' });
  });

  it('never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array().map((a) => Buffer.from(a))), (line) => {
        const r = parseCommandLine(line);
        expect(typeof r.verb).toBe('string');
        expect(r.verb).not.toContain(' ');
        expect(r.args).not.toMatch(/[ \t\r\n]$/);
      }),
      { numRuns: 2000 },
    );
    expect(parseCommandLine(undefined as unknown as string)).toEqual({ verb: '', args: '' });
  });
});
