/**
 * The options of @mailgate/plugin-spam (`with:` in YAML), validated before any port
 * opens. With no option at all the plugin is useful and safe: header and body rules
 * and SPF score, messages at 5 points are tagged, at 15 rejected; no DNS list is
 * queried until one is configured (public lists have usage terms and need a resolver
 * of one's own, see the README).
 */
import { z } from 'zod';
import { durationSchema, sizeSchema } from '@mailgate/core';
import { domainListSchema, ipListSchema } from './dnslists.js';
import { rulesConfigSchema } from './rules.js';
import { cidrError } from './networks.js';
import { BAYES_BAND_NAMES, SPF_RESULTS, type BayesBand, type SpfResultName } from './score.js';

const points = z.number({ error: 'expected a number of points' }).finite();

function scoresOf<K extends string>(keys: readonly K[]) {
  return z.strictObject(Object.fromEntries(keys.map((k) => [k, points.optional()])) as Record<K, z.ZodOptional<typeof points>>);
}

const spfObject = z.strictObject({
  enabled: z.boolean().default(true),
  /** Refuse at RCPT with 550 5.7.23 when the envelope sender's SPF result is fail (policyd-spf's default; off here, as in SpamAssassin). */
  rejectFail: z.boolean().default(false),
  /** Also check the HELO identity (SPF_HELO_* tests). */
  helo: z.boolean().default(true),
  /** Add a Received-SPF: header (RFC 7208 §9.1) to the messages scanned. */
  header: z.boolean().default(true),
  /** Points per result, replacing the defaults (SPF_PASS, SPF_FAIL …). */
  scores: scoresOf<SpfResultName>(SPF_RESULTS).prefault({}),
  /** Points per result for the HELO identity (SPF_HELO_*). */
  heloScores: scoresOf<SpfResultName>(SPF_RESULTS).prefault({}),
});

/** `spf: false` turns SPF off, `spf: true` or an object turns it on. */
const spfSchema = z.preprocess((value) => (typeof value === 'boolean' ? { enabled: value } : value), spfObject);

const dkimObject = z.strictObject({
  enabled: z.boolean().default(true),
  /** Verify at most this many DKIM-Signature fields per message, the topmost first (rspamd's default: 5). */
  maxSignatures: z.int().min(1).max(20).default(5),
  /** Points, replacing the defaults: DKIM_VALID, DKIM_VALID_AU (signed by the From: domain), DKIM_INVALID, DKIM_NONE (unsigned; 0 adds no test). */
  scores: z.strictObject({ valid: points.optional(), validAuthor: points.optional(), invalid: points.optional(), none: points.optional() }).prefault({}),
});

/** `dkim: false` turns DKIM verification off (DMARC then only has SPF to align). */
const dkimSchema = z.preprocess((value) => (typeof value === 'boolean' ? { enabled: value } : value), dkimObject);

const dmarcObject = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * Refuse (550 5.7.1 after DATA) a DMARC fail of a domain whose policy is p=reject, and a
   * From: that could hide a domain (see evaluateDmarc) (opendmarc's RejectFailures); off: points only.
   */
  rejectReject: z.boolean().default(false),
  /** DMARC_PASS */
  passScore: points.default(-0.1),
  /** DMARC_REJECT: failed, the domain asks for reject */
  rejectScore: points.default(5),
  /** DMARC_QUAR: failed, the domain asks for quarantine (or reject, outside its pct= sample) */
  quarantineScore: points.default(3),
  /** DMARC_NONE: failed, the domain asks for nothing (p=none) */
  noneScore: points.default(0.1),
  /** DMARC_MISSING: the From: domain publishes no policy (0 adds no test) */
  missingScore: points.default(0),
});

const dmarcSchema = z.preprocess((value) => (typeof value === 'boolean' ? { enabled: value } : value), dmarcObject);

const bayesSchema = z.strictObject({
  /** The token database, relative to the config file's directory. Written by `mailgate spam train`. */
  file: z.string().min(1, { error: 'must not be empty' }),
  /** Points per band, replacing the defaults (BAYES_00 … BAYES_99, BAYES_999). */
  scores: scoresOf<BayesBand>(BAYES_BAND_NAMES).prefault({}),
  /** Spams and hams that must have been learned before Bayes scores anything (SpamAssassin's bayes_min_spam_num / bayes_min_ham_num). */
  minSpam: z.int().min(0).default(200),
  minHam: z.int().min(0).default(200),
  /** How often the running gateway looks for a newer file (after `mailgate spam train`). */
  reloadInterval: durationSchema.default(60_000),
});

const headersSchema = z.strictObject({
  /** X-Spam-Status: Yes|No, score=… required=… tests=… */
  status: z.boolean().default(true),
  /** X-Spam-Score: 7.3 */
  score: z.boolean().default(true),
  /** X-Spam-Flag: YES, on messages at or over `tag` only. */
  flag: z.boolean().default(true),
  /** X-Spam-Level: one * per whole point (for Sieve/procmail rules written for SpamAssassin). */
  level: z.boolean().default(false),
  /** X-Spam-Report: every check that fired with its points and description. */
  report: z.boolean().default(false),
  /** Authentication-Results: (RFC 8601) with the SPF, DKIM and DMARC results. */
  authResults: z.boolean().default(true),
  /**
   * Remove, from scanned mail, the X-Spam-* fields the sender put in and the
   * Authentication-Results fields that claim to be this gateway's (RFC 8601 §5), as
   * SpamAssassin does: a forged "X-Spam-Status: No" must not travel on below ours.
   */
  removeExisting: z.boolean().default(true),
});

const cidr = z.string().superRefine((text, ctx) => {
  const error = cidrError(text);
  if (error) ctx.addIssue({ code: 'custom', message: error });
});

// eslint-disable-next-line no-control-regex
const singleLine = z.string().min(1).max(200).regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be a single line without control characters' });

export const spamOptionsSchema = z
  .strictObject({
    /** Messages at or over this score get X-Spam-Flag: YES (SpamAssassin's required_score). */
    tag: points.default(5),
    /** Refuse messages at or over this score (550 5.7.1); false: never refuse. */
    reject: z.union([points, z.literal(false)], { error: 'expected a number of points or false' }).default(15),
    /** Answer 451 4.7.1 (try later) at or over this score and under `reject` (rspamd's soft reject). */
    tempfail: points.optional(),
    /** IP blocklists (RFC 5782): the client's address is looked up at connect. */
    dnsbl: z.array(ipListSchema).default([]),
    /** IP allowlists: a listing lowers the score by the entry's weight. */
    dnswl: z.array(ipListSchema).default([]),
    /** Domain blocklists for the envelope sender, HELO name and From: domain (see `check`). */
    rhsbl: z.array(domainListSchema).default([]),
    /** Domain blocklists for the domains of the URLs in the message (SURBL, URIBL, Spamhaus DBL). */
    uribl: z.array(domainListSchema).default([]),
    /** Domains never looked up in rhsbl/uribl lists (your own, big senders); each covers its subdomains. */
    neverQuery: z.array(z.string().min(1).max(253)).default([]),
    /** Longest wait for DNS list and SPF answers at one step; later answers are ignored (no points). */
    dnsTimeout: durationSchema.default(10_000),
    spf: spfSchema.prefault({}),
    /** DKIM signatures (RFC 6376, RFC 8463) of messages up to maxScanSize. */
    dkim: dkimSchema.prefault({}),
    /** The From: domain's DMARC policy (RFC 7489), with the SPF and DKIM results. */
    dmarc: dmarcSchema.prefault({}),
    /** Header and body rules: the defaults, per-rule score overrides, custom rules. */
    rules: rulesConfigSchema.prefault({}),
    /** The trainable Bayesian classifier; off without a file. */
    bayes: bayesSchema.optional(),
    /** Larger messages get no content checks (rules, Bayes, URI lists), like spamc's 500 KB limit. */
    maxScanSize: sizeSchema.default(512 * 1024),
    /** Do not score clients that authenticated (submission). */
    skipAuthenticated: z.boolean().default(true),
    /** Clients in these networks are never scored (your own relays, monitoring). */
    trustedNetworks: z.array(cidr).default([]),
    headers: headersSchema.prefault({}),
    /** The text of the 550 after DATA. */
    rejectMessage: singleLine.default('Message rejected as spam'),
    /** The text of the 451 after DATA (tempfail band). */
    tempfailMessage: singleLine.default('Message looks like spam, try again later'),
  })
  .superRefine((o, ctx) => {
    checkListNames(ctx, [['dnsbl', o.dnsbl], ['dnswl', o.dnswl]], () => false);
    checkListNames(ctx, [['rhsbl', o.rhsbl], ['uribl', o.uribl]], sameDomainList);
    // A message on which nothing fired scores 0: a threshold at or under it refuses all mail.
    if (o.reject !== false && o.reject <= 0) ctx.addIssue({ code: 'custom', path: ['reject'], message: 'must be greater than 0 (a message on which no check fired scores 0), or false' });
    if (o.tempfail !== undefined && o.tempfail <= 0) ctx.addIssue({ code: 'custom', path: ['tempfail'], message: 'must be greater than 0 (a message on which no check fired scores 0)' });
    if (o.reject !== false && o.reject <= o.tag) {
      ctx.addIssue({ code: 'custom', path: ['reject'], message: `must be greater than tag (${o.tag}), or false` });
    }
    if (o.tempfail !== undefined) {
      if (o.tempfail < o.tag) ctx.addIssue({ code: 'custom', path: ['tempfail'], message: `must be at least tag (${o.tag})` });
      if (o.reject !== false && o.tempfail >= o.reject) {
        ctx.addIssue({ code: 'custom', path: ['tempfail'], message: `must be less than reject (${o.reject})` });
      }
    }
  });

type ListEntry = { name: string; zone: string; weight: number; returnCodes?: string[] | undefined; bitmask?: number | undefined };

/**
 * A list's name is its test's name, and the key its hits are scored by. Two entries of
 * one zone (a blocklist and an allowlist sharing a combined zone, or SBL and PBL codes
 * of zen with their own weights) get the zone as their default name: their hits were
 * then scored with the first entry's weight, so an allowlisted client could be refused.
 * IP lists need unique names; domain lists may repeat one (the same list in rhsbl and
 * uribl) only with the same zone, weight and answer filter.
 */
function checkListNames(ctx: z.RefinementCtx, groups: Array<[string, readonly ListEntry[]]>, same: (a: ListEntry, b: ListEntry) => boolean): void {
  const seen = new Map<string, { where: string; entry: ListEntry }>();
  for (const [key, entries] of groups) {
    for (const [i, entry] of entries.entries()) {
      const first = seen.get(entry.name);
      if (!first) seen.set(entry.name, { where: `${key}[${i}]`, entry });
      else if (!same(first.entry, entry)) {
        ctx.addIssue({
          code: 'custom',
          path: [key, i, 'name'],
          message: `"${entry.name}" is already the name of ${first.where}: give each entry its own name`,
        });
      }
    }
  }
}

function sameDomainList(a: ListEntry, b: ListEntry): boolean {
  return a.zone === b.zone && a.weight === b.weight && a.bitmask === b.bitmask && JSON.stringify(a.returnCodes ?? null) === JSON.stringify(b.returnCodes ?? null);
}

export type SpamOptions = z.output<typeof spamOptionsSchema>;
export type SpamOptionsInput = z.input<typeof spamOptionsSchema>;
