/**
 * The options of @mailgate/plugin-acl (`with:` in YAML), validated before any port
 * is opened: a wrong key, a bad network, an invalid pattern or a rule condition that
 * cannot be known at the rule's stage is reported with its path and line.
 */
import { z } from 'zod';
import { durationSchema } from '@mailgate/core';
import { isCounterStore, type CounterStore } from './counters.js';
import { entryError, type ListKind } from './lists.js';

export const STAGES = ['connect', 'helo', 'mail', 'rcpt'] as const;
export type AclStage = (typeof STAGES)[number];

const stageIndex = (stage: AclStage): number => STAGES.indexOf(stage);

const fileEntry = z.strictObject({
  /** A file with one entry a line (`#` comments), relative to the config file; reloaded when it changes. */
  file: z.string().min(1, { error: 'must not be empty' }),
});

/** A list of `kind` entries and `{ file }` references; a single entry may be written without the list. */
function list(kind: ListKind) {
  const entry = z.union([
    z.string().superRefine((text, ctx) => {
      const error = entryError(kind, text);
      if (error) ctx.addIssue({ code: 'custom', message: error });
    }),
    fileEntry,
  ]);
  return z.union([entry, z.array(entry)]).transform((value) => (Array.isArray(value) ? value : [value]));
}

// eslint-disable-next-line no-control-regex
const singleLine = z.string().regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be a single line without control characters' });

const ACTIONS = ['accept', 'reject', 'tempfail'] as const;

/** Conditions and the earliest stage at which each is known. */
const CONDITION_STAGE = {
  client: 'connect',
  rdns: 'connect',
  fcrdns: 'connect',
  tls: 'connect',
  helo: 'helo',
  sender: 'mail',
  user: 'mail',
  authenticated: 'mail',
  trusted: 'mail',
  recipient: 'rcpt',
} as const satisfies Record<string, AclStage>;

export const ruleSchema = z
  .strictObject({
    /** Shown in logs and the audit trail. */
    name: singleLine.optional(),
    /** Default: the earliest stage at which every condition of the rule is known. */
    stage: z.enum(STAGES).optional(),
    /** Client IP address or network (IPv4, IPv6, IPv4-mapped). */
    client: list('ip').optional(),
    /** Forward-confirmed reverse DNS name of the client. */
    rdns: list('host').optional(),
    /** true: the client has a forward-confirmed reverse DNS name; false: it has none. */
    fcrdns: z.boolean().optional(),
    /** HELO/EHLO name. */
    helo: list('host').optional(),
    /** Envelope sender (MAIL FROM); `<>` is the null sender. */
    sender: list('address').optional(),
    /** Envelope recipient (RCPT TO). */
    recipient: list('address').optional(),
    /** Authenticated user name. */
    user: list('user').optional(),
    /** true: the client authenticated (SMTP AUTH); false: it did not. */
    authenticated: z.boolean().optional(),
    /** true: the client may relay (authenticated, or in relayFrom); false: it may not. */
    trusted: z.boolean().optional(),
    /** true: the session is encrypted (STARTTLS or implicit TLS). */
    tls: z.boolean().optional(),
    action: z.enum(ACTIONS),
    /** SMTP reply code; must be of the action's class (5xx reject, 4xx tempfail). */
    code: z.int().min(200).max(599).optional(),
    /** Enhanced status code, e.g. 5.7.1; its class follows the code. */
    enhanced: z
      .string()
      .regex(/^[245]\.\d{1,3}\.\d{1,3}$/, { error: 'expected an enhanced status code like "5.7.1"' })
      .optional(),
    /** Reply text. */
    message: singleLine.min(1).max(400).optional(),
  })
  .superRefine((rule, ctx) => {
    let needed: AclStage = 'connect';
    let because = '';
    for (const [key, stage] of Object.entries(CONDITION_STAGE) as [keyof typeof CONDITION_STAGE, AclStage][]) {
      if (rule[key] !== undefined && stageIndex(stage) > stageIndex(needed)) {
        needed = stage;
        because = key;
      }
    }
    if (rule.stage && stageIndex(rule.stage) < stageIndex(needed)) {
      ctx.addIssue({
        code: 'custom',
        path: ['stage'],
        message: `a rule on "${because}" cannot run at stage "${rule.stage}": ${because} is only known from the ${needed} stage on`,
      });
    }
    if (rule.code !== undefined) {
      const want = rule.action === 'reject' ? 5 : rule.action === 'tempfail' ? 4 : 2;
      if (Math.floor(rule.code / 100) !== want) {
        ctx.addIssue({ code: 'custom', path: ['code'], message: `a ${rule.action} rule needs a ${want}xx code, got ${rule.code}` });
      }
    }
    if (rule.action === 'accept' && (rule.code !== undefined || rule.enhanced !== undefined || rule.message !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: 'an accept rule sends no reply of its own (it only skips the remaining ACL checks): remove code, enhanced and message',
      });
    }
  })
  .transform((rule) => {
    let stage: AclStage = 'connect';
    for (const [key, s] of Object.entries(CONDITION_STAGE) as [keyof typeof CONDITION_STAGE, AclStage][]) {
      if (rule[key] !== undefined && stageIndex(s) > stageIndex(stage)) stage = s;
    }
    return { ...rule, stage: rule.stage ?? stage };
  });

const rateSchema = z.strictObject({
  /** Events allowed per window. */
  max: z.int().min(1),
  /** Window length: "1m", "1h", or seconds. */
  window: durationSchema.refine((ms) => ms > 0, { error: 'must be longer than 0' }),
});

const limitsSchema = z.strictObject({
  /** Networks exempt from every limit below (e.g. your own servers). */
  exempt: list('ip').default([]),
  /**
   * IPv6 clients are counted per network of this prefix length (IPv4 ones per address):
   * one host usually has a whole /64. Default: the core's limits.ipv6PrefixLength, so the
   * ACL and the core's maxConnectionsPerIp count the same clients.
   */
  ipv6PrefixLength: z.int().min(32).max(128).optional(),
  /** Open connections per client IP (421 4.7.0 at connect). */
  connectionsPerIp: z.int().min(1).optional(),
  /** New connections per client IP per window (421 4.7.0 at connect). */
  connectionRate: rateSchema.optional(),
  /** MAIL commands per authenticated user, else per client IP, per window (450 4.7.1). */
  messageRate: rateSchema.optional(),
  /** RCPT commands per authenticated user, else per client IP, per window (450 4.7.1). */
  recipientRate: rateSchema.optional(),
  /**
   * What messageRate and recipientRate count for a client that did not authenticate:
   * 'client' (its IP); 'sender' counts a relayFrom client per envelope sender (a relay
   * for local programs: one runaway program does not hold up the others), every other
   * client still per IP, since anyone can forge a MAIL FROM.
   */
  rateBy: z.enum(['client', 'sender']).default('client'),
  /** Error replies per session before the ACL closes it (421 4.7.0). */
  maxErrors: z.int().min(1).optional(),
  /** Failed AUTH per client IP per window; past it AUTH gets 454 4.7.0 without checking. */
  authFailures: rateSchema.default({ max: 5, window: 15 * 60_000 }),
  /** Failed AUTH in one session before it is closed with 421 4.7.0. */
  authFailuresPerSession: z.int().min(1).default(3),
  /** Most counters the in-memory store keeps. */
  maxCounters: z.int().min(100).default(100_000),
});

const authSchema = z.strictObject({
  /** YAML or htpasswd-style users file, relative to the config file; reloaded when it changes. */
  usersFile: z.string().min(1),
  /** Default: YAML for .yaml/.yml files or a file starting with "users:", else htpasswd. */
  format: z.enum(['auto', 'yaml', 'htpasswd']).default('auto'),
  /** An authenticated client may only use its user's own addresses as MAIL FROM (553 5.7.1). */
  bindSender: z.boolean().default(true),
});

export const aclOptionsSchema = z.strictObject({
  /** Domains delivered here: accepted from anyone (a storage plugin must claim the mailboxes). */
  localDomains: list('domain').default([]),
  /** Domains relayed for anyone (a filtering gateway in front of their server); `.example.com` = subdomains. */
  relayDomains: list('domainPattern').default([]),
  /** Client networks allowed to relay to any domain. */
  relayFrom: list('ip').default([]),
  /** Our own IP addresses whose literals (`user@[192.0.2.1]`) are local domains. */
  localAddressLiterals: list('ip').default([]),
  /** Let trusted clients relay to other address literals (`user@[198.51.100.7]`); refused by default. */
  relayToAddressLiterals: z.boolean().default(false),
  /** Ordered rules, first match wins within a stage. */
  rules: z.array(ruleSchema).default([]),
  /** SMTP AUTH against a users file; without it AUTH is not offered (by this plugin). */
  auth: authSchema.optional(),
  limits: limitsSchema.prefault({}),
  /** A reverse DNS lookup that fails temporarily: the rule does not match ('nomatch'), or the command is tempfailed. */
  rdnsFailure: z.enum(['nomatch', 'tempfail']).default('nomatch'),
  /** How often files (lists, users) are checked for changes; 0 = on every use. */
  reloadInterval: durationSchema.default(5_000),
  /** A shared counter store (in code only); default: in memory. */
  counterStore: z
    .custom<CounterStore>(isCounterStore, { error: 'expected a CounterStore object (increment, get, acquire, release)' })
    .optional(),
});

export type AclOptions = z.output<typeof aclOptionsSchema>;
export type AclOptionsInput = z.input<typeof aclOptionsSchema>;
export type AclRule = z.output<typeof ruleSchema>;
export type AclRuleInput = z.input<typeof ruleSchema>;
export type RateLimit = z.output<typeof rateSchema>;
