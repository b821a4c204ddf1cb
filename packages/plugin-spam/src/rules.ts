/**
 * Header and body rules with scores, SpamAssassin's idea made small: a built-in set
 * (rules-default.ts) plus the admin's own rules, each a regular expression on a header,
 * the whole header, the body text or the URLs, or a header's presence.
 *
 *   rules:
 *     defaults: true                 # the built-in set (default on)
 *     scores: { MIME_HTML_ONLY: 0, MISSING_MID: 1.5 }   # 0 disables a rule
 *     freemailDomains: [mail.example]
 *     custom:
 *       - { name: LOCAL_VIAGRA, score: 3, body: true, pattern: '/v[i1]agra/i' }
 *       - { name: LOCAL_NO_UA, score: 0.5, header: User-Agent, exists: false }
 *
 * Patterns are compiled once, when the config is read (ruleSchema keeps the RegExp); a
 * bad one is a config error that names the rule. Matching is bounded by input size (body
 * rules see at most the first 256 KiB of text, header rules at most 256 KiB of a header,
 * uri rules the message's URLs, at most 100), but not by pattern: JavaScript regular
 * expressions backtrack, and a pattern like `(a+)+$` can take seconds on a crafted
 * message. Writing patterns without nested quantifiers is the admin's responsibility, as
 * it is in SpamAssassin.
 */
import { z } from 'zod';
import type { MessageContent } from './content.js';
import { RuleContext } from './rules-context.js';
import { BUILTIN_RULES, BUILTIN_RULE_NAMES, type BuiltinSettings } from './rules-default.js';

export { MAX_RULE_TEXT } from './rules-context.js';
export { BUILTIN_RULES, BUILTIN_RULE_NAMES } from './rules-default.js';

/** The parsed message rules read: content.ts's MessageContent. */
export type RuleInput = MessageContent;

export interface RuleHit {
  name: string;
  score: number;
  describe: string;
}

const RULE_NAME = /^[A-Z0-9_]{1,64}$/;
export const ruleNameSchema = z.string().regex(RULE_NAME, { error: 'rule names are 1-64 of A-Z, 0-9 and _' });

/** A header field name (RFC 5322 §2.2: printable ASCII except the colon), or ALL for the whole header. */
const fieldNameSchema = z.string().regex(/^[\x21-\x39\x3b-\x7e]{1,100}$/, { error: 'must be a header field name (or ALL)' });

/** Flags that make sense for a test run once per text; g and y would make RegExp.test stateful. */
const ALLOWED_FLAGS = /^[imsuv]*$/;

/**
 * A pattern as written in the config: a regular expression source (`v[i1]agra`), or the
 * `/source/flags` form (`/v[i1]agra/i`). Returns the RegExp or why it is not one.
 */
export function compilePattern(pattern: string): RegExp | string {
  if (pattern.length === 0) return 'pattern must not be empty';
  if (pattern.length > 4_096) return 'pattern longer than 4096 characters';
  let source = pattern;
  let flags = '';
  const slashed = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (slashed) {
    source = slashed[1]!;
    flags = slashed[2]!;
    if (source.length === 0) return 'pattern must not be empty';
    if (!ALLOWED_FLAGS.test(flags)) return `unsupported flags "${flags}" (use i, m, s, u, v)`;
  }
  try {
    return new RegExp(source, flags);
  } catch (err) {
    return `invalid pattern: ${err instanceof Error ? err.message : String(err)}`;
  }
}

export const ruleSchema = z
  .strictObject({
    /** Shown in X-Spam-Status tests=…; SpamAssassin style: A-Z, 0-9, _. */
    name: ruleNameSchema,
    /** Points when the rule fires (negative for ham signs); 0 disables it. */
    score: z.number(),
    /** One line for reports; default: the name. */
    describe: z.string().max(200).regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be a single line' }).optional(),
    /** Test this header field (all its occurrences, joined by newlines; '' when absent), or ALL: every `Name: value` line. */
    header: fieldNameSchema.optional(),
    /** Test the body text (the Subject as first line, then the text parts; HTML rendered as text where there is no plain part). */
    body: z.literal(true).optional(),
    /** Test each URL of the message; fires if one matches. */
    uri: z.literal(true).optional(),
    /** A JavaScript regular expression: `source` or `/source/flags`. */
    pattern: z.string().optional(),
    /** With `header`: true fires when the header is present, false when it is absent. */
    exists: z.boolean().optional(),
    /** Fire when the test does NOT match (SpamAssassin's `!~`). */
    negate: z.boolean().optional(),
  })
  .transform((rule, ctx) => {
    const issue = (message: string, path: string): void => ctx.addIssue({ code: 'custom', message: `rule ${rule.name}: ${message}`, path: [path] });
    const targets = [rule.header !== undefined, rule.body === true, rule.uri === true].filter(Boolean).length;
    if (targets !== 1) issue('needs exactly one of header, body or uri', 'name');
    /** `pattern` compiled, here and only here. */
    let regex: RegExp | undefined;
    if (rule.exists !== undefined) {
      if (rule.header === undefined || rule.header === 'ALL') issue('exists needs a header field name', 'exists');
      if (rule.pattern !== undefined) issue('give either exists or pattern, not both', 'exists');
    } else if (rule.pattern === undefined) {
      issue('needs a pattern (or, for a header, exists)', 'pattern');
    } else {
      const compiled = compilePattern(rule.pattern);
      if (typeof compiled === 'string') issue(compiled, 'pattern');
      else regex = compiled;
    }
    return { ...rule, regex };
  });

export type RuleConfig = z.output<typeof ruleSchema>;

const domainSchema = z
  .string()
  .transform((d) => d.trim().toLowerCase().replace(/\.$/, ''))
  .refine((d) => /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)+$/.test(d) && d.length <= 253, { error: 'must be a domain name' });

export const rulesConfigSchema = z
  .strictObject({
    /** Use the built-in rules. */
    defaults: z.boolean().default(true),
    /** Score per rule name, built-in or custom; 0 disables the rule. */
    scores: z.record(ruleNameSchema, z.number()).default({}),
    /** The admin's own rules; one named like a built-in rule replaces it. */
    custom: z.array(ruleSchema).default([]),
    /** Freemail domains besides the built-in list (for FREEMAIL_FORGED_REPLYTO). */
    freemailDomains: z.array(domainSchema).default([]),
  })
  .superRefine((config, ctx) => {
    const custom = new Set<string>();
    for (const [i, rule] of config.custom.entries()) {
      if (custom.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['custom', i, 'name'], message: `rule ${rule.name}: defined twice` });
      custom.add(rule.name);
    }
    for (const name of Object.keys(config.scores)) {
      const known = custom.has(name) || (config.defaults && BUILTIN_RULE_NAMES.has(name));
      if (!known) {
        const why = BUILTIN_RULE_NAMES.has(name) ? 'a built-in rule, but defaults is false' : 'no such rule';
        ctx.addIssue({ code: 'custom', path: ['scores', name], message: `rule ${name}: ${why}` });
      }
    }
  });

export type RulesConfig = z.output<typeof rulesConfigSchema>;
export type RulesConfigInput = z.input<typeof rulesConfigSchema>;

export class RulesConfigError extends Error {
  override readonly name = 'RulesConfigError';
}

interface CompiledRule {
  name: string;
  score: number;
  describe: string;
  test(ctx: RuleContext, settings: BuiltinSettings): boolean;
}

/** The rules ready to run: build once per config, evaluate per message. */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  readonly settings: BuiltinSettings;
}

function customTest(rule: RuleConfig): CompiledRule['test'] {
  const negate = rule.negate === true;
  if (rule.exists !== undefined) {
    const field = rule.header!;
    const wanted = rule.exists;
    return (ctx) => ctx.has(field) === wanted !== negate;
  }
  const re = rule.regex;
  if (!re) throw new RulesConfigError(`rule ${rule.name}: not parsed by ruleSchema (no compiled pattern)`);
  if (rule.body) return (ctx) => re.test(ctx.body()) !== negate;
  if (rule.uri) return (ctx) => ctx.urls().some((url) => re.test(url)) !== negate;
  const field = rule.header!;
  if (field === 'ALL') return (ctx) => re.test(ctx.allHeaders()) !== negate;
  return (ctx) => re.test(ctx.header(field)) !== negate;
}

/**
 * Validate a raw rules config (what `rules:` holds in YAML), compiling its patterns.
 * Throws RulesConfigError, naming the rule, for a bad rule, pattern or score override.
 * The plugin's options have been through this schema already (spamOptionsSchema).
 */
export function parseRulesConfig(config: RulesConfigInput = {}): RulesConfig {
  const parsed = rulesConfigSchema.safeParse(config);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
  throw new RulesConfigError(`invalid rules config: ${lines.join('; ')}`);
}

/**
 * The rules of a parsed config (rulesConfigSchema's output, e.g. the plugin's
 * `options.rules`) ready to run: nothing is validated or compiled again here.
 */
export function compileRules(config: RulesConfig): CompiledRules {
  const { defaults, scores, custom, freemailDomains } = config;
  const byName = new Map<string, CompiledRule>();
  if (defaults) for (const rule of BUILTIN_RULES) byName.set(rule.name, rule);
  for (const rule of custom) {
    byName.set(rule.name, { name: rule.name, score: rule.score, describe: rule.describe ?? rule.name, test: customTest(rule) });
  }
  const rules: CompiledRule[] = [];
  for (const rule of byName.values()) {
    const score = scores[rule.name] ?? rule.score;
    if (score !== 0) rules.push({ ...rule, score });
  }
  return { rules, settings: { freemail: new Set(freemailDomains) } };
}

/**
 * The rules that fire on a message, in rule order. `now` is the time of receipt (for
 * the Date rules). Never throws: a rule that fails on odd input simply does not fire.
 */
export function evaluateRules(compiled: CompiledRules, input: RuleInput, now: number | Date = Date.now()): RuleHit[] {
  const ctx = new RuleContext(input, typeof now === 'number' ? now : now.getTime());
  const hits: RuleHit[] = [];
  for (const rule of compiled.rules) {
    let fired = false;
    try {
      fired = rule.test(ctx, compiled.settings);
    } catch {
      // hostile input reaching an unforeseen path: no points rather than no verdict
    }
    if (fired) hits.push({ name: rule.name, score: rule.score, describe: rule.describe });
  }
  return hits;
}
