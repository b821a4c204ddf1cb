import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatDuration, formatSize, parseConfig, parseDuration, parseSize } from '../../src/config/index.js';

describe('parsers hold up to arbitrary input', () => {
  it('formatDuration output always parses back to the same milliseconds', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }), (ms) => parseDuration(formatDuration(ms)) === ms));
  });

  it('formatSize output always parses back to the same bytes', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (bytes) => parseSize(formatSize(bytes)) === bytes));
  });

  it('size and duration parsers return a non-negative safe integer or undefined, never throw', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        for (const value of [parseSize(text), parseDuration(text)]) {
          if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) return false;
        }
        return true;
      }),
    );
  });

  it('parseConfig on arbitrary text returns a config or throws ConfigError with located issues', () => {
    const yamlish = fc.array(
      fc.oneof(fc.constantFrom('limits:', '  maxErrors: 3', 'listen:', '  - port: 25', '- x', ': :', '{', '"', '${X}', '  ', 'a: &a [*a]', 'tls: {}'), fc.string()),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(yamlish, (lines) => {
        try {
          parseConfig(lines.join('\n'), { file: 'f.yaml', env: {} });
        } catch (error) {
          if (!(error instanceof ConfigError) || error.issues.length === 0) throw error;
          for (const issue of error.issues) {
            if (issue.line !== undefined && !(issue.line >= 1 && (issue.column ?? 0) >= 1)) throw error;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
