/**
 * Custom rules (header, ALL, body, uri, exists, negate), the config (errors that name
 * the rule, score overrides, defaults off), and hostile messages staying fast.
 */
import { describe, expect, it } from 'vitest';
import { compilePattern, compileRules, evaluateRules, parseRulesConfig, rulesConfigSchema, RulesConfigError, type RulesConfigInput, type RuleInput } from '../src/rules.js';
import { RECEIVED, ruleInput } from './lists-helpers.js';

/** A raw config validated and compiled, as the plugin's options are. */
function compile(config: RulesConfigInput = {}) {
  return compileRules(parseRulesConfig(config));
}

function names(config: RulesConfigInput, input: RuleInput = ruleInput()): string[] {
  return evaluateRules(compile(config), input, RECEIVED).map((h) => h.name);
}

function only(custom: RulesConfigInput['custom'], input: RuleInput = ruleInput()): string[] {
  return names({ defaults: false, custom }, input);
}

function configError(config: unknown): string {
  try {
    parseRulesConfig(config as RulesConfigInput);
  } catch (err) {
    expect(err).toBeInstanceOf(RulesConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

describe('custom rules', () => {
  it('header rules match a field case-insensitively, all occurrences joined', () => {
    const input = ruleInput({ headers: [{ name: 'X-Mailer', value: 'Spamware 1.0' }, { name: 'received', value: 'from a' }, { name: 'Received', value: 'from b' }] });
    expect(only([{ name: 'MAILER', score: 1, header: 'x-mailer', pattern: '/^spamware/i' }], input)).toEqual(['MAILER']);
    expect(only([{ name: 'RCVD_B', score: 1, header: 'Received', pattern: '^from a\\nfrom b$' }], input)).toEqual(['RCVD_B']);
    expect(only([{ name: 'CASE', score: 1, header: 'X-Mailer', pattern: '^spamware' }], input)).toEqual([]);
  });

  it('an absent header is the empty string, so negated rules fire on it (SpamAssassin !~)', () => {
    expect(only([{ name: 'NO_UA_MATCH', score: 1, header: 'User-Agent', pattern: 'Thunderbird', negate: true }])).toEqual(['NO_UA_MATCH']);
    expect(only([{ name: 'EMPTY', score: 1, header: 'User-Agent', pattern: '^$' }])).toEqual(['EMPTY']);
  });

  it('header ALL matches the whole header as Name: value lines', () => {
    expect(only([{ name: 'ALL_MID', score: 1, header: 'ALL', pattern: '/^Message-ID: <1@example\\.com>$/m' }])).toEqual(['ALL_MID']);
  });

  it('exists and negate test presence', () => {
    const rules = [
      { name: 'HAS_SUBJECT', score: 1, header: 'subject', exists: true },
      { name: 'NO_LIST_ID', score: 1, header: 'List-Id', exists: false },
      { name: 'NOT_NO_SUBJECT', score: 1, header: 'Subject', exists: false, negate: true },
      { name: 'HAS_LIST_ID', score: 1, header: 'List-Id', exists: true },
    ];
    expect(only(rules)).toEqual(['HAS_SUBJECT', 'NO_LIST_ID', 'NOT_NO_SUBJECT']);
  });

  it('body rules see the Subject and the text; uri rules each URL', () => {
    const input = ruleInput({ subject: 'Cheap meds', text: 'Buy V1AGRA now', urls: ['https://ok.example/', 'http://pills.example/buy?id=1'] });
    const rules = [
      { name: 'BODY_VIAGRA', score: 2, body: true as const, pattern: '/v[i1]agra/i' },
      { name: 'BODY_SUBJECT', score: 1, body: true as const, pattern: '^Cheap meds$', describe: 'subject is the first body line' },
      { name: 'URI_PILLS', score: 1.5, uri: true as const, pattern: '^https?://pills\\.' },
      { name: 'URI_NONE', score: 1, uri: true as const, pattern: 'casino' },
      { name: 'URI_NOT_CASINO', score: -1, uri: true as const, pattern: 'casino', negate: true },
    ];
    const hits = evaluateRules(compile({ defaults: false, custom: rules }), { ...input, text: `${input.text}` }, RECEIVED);
    expect(hits.map((h) => h.name)).toEqual(['BODY_VIAGRA', 'URI_PILLS', 'URI_NOT_CASINO']);
    expect(hits[0]).toEqual({ name: 'BODY_VIAGRA', score: 2, describe: 'BODY_VIAGRA' });
    // SpamAssassin's body starts with the Subject line; without the m flag ^…$ is the whole body
    const multiline = [{ name: 'BODY_SUBJECT', score: 1, body: true as const, pattern: '/^Cheap meds$/m', describe: 'subject is the first body line' }];
    expect(evaluateRules(compile({ defaults: false, custom: multiline }), input, RECEIVED)).toEqual([{ name: 'BODY_SUBJECT', score: 1, describe: 'subject is the first body line' }]);
  });

  it('compiles /source/flags and plain sources; g and y are refused', () => {
    expect(compilePattern('/a.b/is')).toEqual(/a.b/is);
    expect(compilePattern('a/b')).toEqual(/a\/b/);
    expect(compilePattern('/a/g')).toMatch(/unsupported flags/);
    expect(compilePattern('')).toMatch(/empty/);
    expect(compilePattern('(unclosed')).toMatch(/invalid pattern/);
  });
});

describe('rules config', () => {
  it('names the rule in a bad pattern error', () => {
    const message = configError({ custom: [{ name: 'BAD_ONE', score: 1, body: true, pattern: '([a-z' }] });
    expect(message).toMatch(/custom\.0\.pattern: rule BAD_ONE: invalid pattern/);
  });

  it('refuses malformed rules, naming them', () => {
    expect(configError({ custom: [{ name: 'lower_case', score: 1, body: true, pattern: 'x' }] })).toMatch(/A-Z/);
    expect(configError({ custom: [{ name: 'TWO_TARGETS', score: 1, body: true, uri: true, pattern: 'x' }] })).toMatch(/rule TWO_TARGETS: needs exactly one of header, body or uri/);
    expect(configError({ custom: [{ name: 'NO_TARGET', score: 1, pattern: 'x' }] })).toMatch(/rule NO_TARGET: needs exactly one/);
    expect(configError({ custom: [{ name: 'NO_PATTERN', score: 1, body: true }] })).toMatch(/rule NO_PATTERN: needs a pattern/);
    expect(configError({ custom: [{ name: 'BODY_EXISTS', score: 1, body: true, exists: true }] })).toMatch(/rule BODY_EXISTS: exists needs a header/);
    expect(configError({ custom: [{ name: 'ALL_EXISTS', score: 1, header: 'ALL', exists: true }] })).toMatch(/rule ALL_EXISTS: exists needs a header/);
    expect(configError({ custom: [{ name: 'BOTH', score: 1, header: 'To', exists: true, pattern: 'x' }] })).toMatch(/rule BOTH: give either exists or pattern/);
    expect(configError({ custom: [{ name: 'BAD_FIELD', score: 1, header: 'Sub ject', pattern: 'x' }] })).toMatch(/header field name/);
    expect(configError({ custom: [{ name: 'TYPO', score: 1, body: true, pattern: 'x', patern: 'y' }] })).toMatch(/patern/);
    expect(configError({ custom: [{ name: 'NAN', score: Number.NaN, body: true, pattern: 'x' }] })).toMatch(/score/);
    expect(configError({ custom: [{ name: 'TWICE', score: 1, body: true, pattern: 'x' }, { name: 'TWICE', score: 2, body: true, pattern: 'y' }] })).toMatch(/rule TWICE: defined twice/);
  });

  it('refuses a score for a rule that does not exist', () => {
    expect(configError({ scores: { NO_SUCH_RULE: 1 } })).toMatch(/scores\.NO_SUCH_RULE: rule NO_SUCH_RULE: no such rule/);
    expect(configError({ defaults: false, scores: { MISSING_DATE: 1 } })).toMatch(/defaults is false/);
  });

  it('overrides scores, and a score of 0 disables a rule', () => {
    const noDate = ruleInput({ headers: ruleInput().headers.filter((h) => h.name !== 'Date') });
    const hits = evaluateRules(compile({ scores: { MISSING_DATE: 4.5 } }), noDate, RECEIVED);
    expect(hits).toEqual([{ name: 'MISSING_DATE', score: 4.5, describe: 'Missing Date: header' }]);
    expect(names({ scores: { MISSING_DATE: 0 } }, noDate)).toEqual([]);
    const custom = [{ name: 'LOCAL', score: 1, header: 'Subject', exists: true }];
    expect(names({ custom, scores: { LOCAL: 0 } })).toEqual([]);
    expect(evaluateRules(compile({ custom, scores: { LOCAL: -2 } }), ruleInput(), RECEIVED)).toEqual([{ name: 'LOCAL', score: -2, describe: 'LOCAL' }]);
  });

  it('turns the defaults off, and lets a custom rule replace a built-in one', () => {
    const noDate = ruleInput({ headers: ruleInput().headers.filter((h) => h.name !== 'Date') });
    expect(names({ defaults: false }, noDate)).toEqual([]);
    const replaced = [{ name: 'MISSING_DATE', score: 0.1, header: 'Date', exists: false, describe: 'ours' }];
    expect(evaluateRules(compile({ custom: replaced }), noDate, RECEIVED)).toEqual([{ name: 'MISSING_DATE', score: 0.1, describe: 'ours' }]);
  });

  it('parses as the plugin options do, and compiles the parsed output without compiling a pattern again', () => {
    const parsed = rulesConfigSchema.parse({});
    expect(parsed).toEqual({ defaults: true, scores: {}, custom: [], freemailDomains: [] });
    expect(compileRules(parsed).rules.length).toBeGreaterThan(20);
    expect(compile().rules.length).toBe(compileRules(parsed).rules.length);
    // the schema compiles each pattern (that is how it validates it) and keeps the RegExp for compileRules
    const custom = rulesConfigSchema.parse({ defaults: false, custom: [{ name: 'LOCAL', score: 1, body: true, pattern: '/v[i1]agra/i' }] });
    expect(custom.custom[0]!.regex).toEqual(/v[i1]agra/i);
    expect(evaluateRules(compileRules(custom), ruleInput({ text: 'cheap V1AGRA' }), RECEIVED).map((h) => h.name)).toEqual(['LOCAL']);
    expect(() => compileRules({ ...custom, custom: [{ ...custom.custom[0]!, regex: undefined }] })).toThrow(RulesConfigError);
  });
});

describe('hostile messages', () => {
  const rules = compile({
    custom: [
      { name: 'HDR', score: 1, header: 'X-Spam', pattern: 'needle' },
      { name: 'ALLH', score: 1, header: 'ALL', pattern: '/needle$/m' },
      { name: 'BODY', score: 1, body: true, pattern: 'needle' },
      { name: 'URI', score: 1, uri: true, pattern: 'needle' },
    ],
  });

  it('a header repeated 10 000 times stays fast', () => {
    const headers = Array.from({ length: 10_000 }, (_, i) => ({ name: i % 2 ? 'X-Spam' : 'Received', value: `from host${i} ${'x'.repeat(200)}` }));
    const input = ruleInput({ headers });
    const started = performance.now();
    const hits = evaluateRules(rules, input, RECEIVED).map((h) => h.name);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(hits).toContain('MISSING_DATE');
    expect(hits).not.toContain('HDR');
  });

  it('megabytes of text, HTML, URLs and attachments stay fast, and only the first 256 KiB of text is matched', () => {
    const text = `${'word '.repeat(2_000_000)}needle`;
    const html = `${'<p><img src=x>'.repeat(200_000)}<!--${'<'.repeat(100_000)}`;
    const urls = Array.from({ length: 100_000 }, (_, i) => `http://x${i}.example/`);
    const attachments = Array.from({ length: 10_000 }, (_, i) => ({ filename: `${'a.'.repeat(500)}${i}`, mimeType: 'x/y', size: 1 }));
    const started = performance.now();
    const hits = evaluateRules(rules, ruleInput({ text, html, urls, attachments, subject: 'A'.repeat(1_000_000) }), RECEIVED).map((h) => h.name);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(hits).not.toContain('BODY');
    expect(hits).not.toContain('URI');
  });

  it('odd values never throw', () => {
    const odd = ruleInput({
      headers: [
        { name: 'From', value: '<<<@@@>>>' },
        { name: 'Reply-To', value: '"unterminated <x@gmail.com' },
        { name: 'Date', value: 'Mon, 99 Foo 99999 99:99:99 +9999' },
        { name: 'Content-Type', value: '' },
        { name: '', value: '\u0000\uffff' },
      ],
      from: '',
      subject: '\ud800',
      text: '\u0000',
    });
    expect(() => evaluateRules(rules, odd, RECEIVED)).not.toThrow();
    expect(() => evaluateRules(rules, odd, new Date(Number.NaN))).not.toThrow();
  });
});
