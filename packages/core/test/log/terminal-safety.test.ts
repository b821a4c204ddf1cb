/**
 * Log lines carry client text (addresses, HELO names, AUTH user names) and are read with
 * `tail -f` and `journalctl -f`, which show them raw: no character a terminal acts on may
 * reach the line unescaped — C0 and C1 controls (U+009B is an 8-bit CSI), DEL, format
 * characters such as bidi overrides (U+202E), line separators — in either format, and
 * JSON lines stay JSON that parses back to the same text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';

const DANGEROUS = /[\u0000-\u001f\u007f-\u009f\p{Cf}\u2028\u2029]/u;

function lines(format: 'json' | 'pretty', text: string): string {
  let out = '';
  createLogger({ level: 'info', format, write: (l) => (out += l) }).info('refused', { rcpt: text, error: new Error(text) });
  return out;
}

describe('log lines and the terminal', () => {
  it.each(['json', 'pretty'] as const)('%s: escapes CSI, DEL, bidi overrides and separators in client text', (format) => {
    const hostile = '"nobody\\" \u009b2J\u001b[31m\u007f\u202eRLO\u2028\u0085 level=ERROR"@example.test';
    const out = lines(format, hostile);
    expect(out.slice(0, -1)).not.toMatch(DANGEROUS);
    expect(out).toContain('\\u009b2J');
    expect(out).toContain('\\u202eRLO');
    if (format === 'json') expect(JSON.parse(out).rcpt).toBe(hostile);
  });

  it('any text: nothing dangerous reaches the line, and JSON parses back to the text', () => {
    fc.assert(
      fc.property(fc.fullUnicodeString({ maxLength: 40 }), (text) => {
        for (const format of ['json', 'pretty'] as const) {
          const out = lines(format, text);
          expect(out.endsWith('\n')).toBe(true);
          expect(out.slice(0, -1)).not.toMatch(DANGEROUS);
          if (format === 'json') expect(JSON.parse(out).rcpt).toBe(text);
        }
      }),
      { numRuns: 500 },
    );
  });
});
