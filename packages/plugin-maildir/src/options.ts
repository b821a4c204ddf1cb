import { z } from 'zod';
import { durationSchema, isDomainName, sizeSchema } from '@mailgate/core';
import { Mapper, type MappingProblem } from './mapping.js';
import { isSafeFolderTag } from './safety.js';

/** A file or directory mode as an octal string ("0600", "0o2770", "755"). */
function modeSchema(max: number, fallback: string) {
  return z
    .string({ error: 'expected a mode as a quoted octal string like "0600" (an unquoted 0600 is the decimal number 600 in YAML)' })
    .regex(/^(?:0o?)?[0-7]{3,4}$/, { message: 'expected an octal mode like "0600" or "0750"' })
    .transform((text, ctx) => {
      const mode = parseInt(text.replace(/^0o/, ''), 8);
      if (mode > max) {
        ctx.addIssue({ code: 'custom', input: text, message: `mode ${text} is out of range (at most ${max.toString(8).padStart(4, '0')})` });
        return z.NEVER;
      }
      return mode;
    })
    .default(parseInt(fallback, 8));
}

const quotaSchema = z
  .strictObject({
    /** Largest total size of the mailbox (all folders), e.g. "1GB". */
    bytes: sizeSchema.optional(),
    /** Largest number of messages in the mailbox (all folders). */
    messages: z.number().int().positive().optional(),
  })
  .refine((q) => q.bytes !== undefined || q.messages !== undefined, { message: 'a quota needs `bytes`, `messages` or both' });

const domainSchema = z.string().refine((d) => isDomainName(d.replace(/\.$/, '')), {
  message: 'expected a domain name such as example.com',
});

/** An address `user@domain`, or a bare local part `user` meaning "in every served domain". */
const addressKey = z
  .string()
  .min(1)
  .refine((a) => {
    const at = a.lastIndexOf('@');
    return at !== 0 && at !== a.length - 1;
  }, { message: 'expected an address like user@example.com, or a bare local part like user' });

const mailboxEntry = z.union([addressKey, z.strictObject({ address: addressKey, quota: quotaSchema.optional() })]);

const PLACEHOLDERS = new Set(['root', 'domain', 'user']);

/** A custom local-part normalizer (code API only): gets the user (tag already removed) and the folded domain. */
export type LocalPartNormalizer = (user: string, domain: string) => string;

/**
 * Options of `@mailgate/plugin-maildir` (`with:` in YAML). See README.md for a
 * commented reference.
 */
export const maildirOptionsSchema = z
  .strictObject({
    /** Base directory of every mailbox; relative paths are against the config file's directory. */
    root: z.string().min(1).optional(),
    /** Single-mailbox mode: every claimed recipient is delivered into this one Maildir (no mapping). */
    mailbox: z.string().min(1).optional(),
    /**
     * Domains this plugin delivers; each is declared local to the gateway. `"*"` = any
     * domain. Omitted: the domains other plugins declared local (e.g. plugin-acl's localDomains).
     */
    // (one domain may be written without a list, as plugin-acl's lists may)
    domains: z
      .union([z.literal('*'), z.array(domainSchema).min(1), domainSchema.transform((d) => [d])], { error: 'expected a domain, a list of domains, or "*"' })
      .optional(),
    /** Where a mailbox lives: `{root}`, `{domain}`, `{user}`. Must start with `{root}/` and use `{user}`. */
    path: z
      .string()
      .default('{root}/{domain}/{user}')
      .superRefine((template, ctx) => {
        for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
          if (!PLACEHOLDERS.has(match[1]!)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${match[1]}} (use {root}, {domain}, {user})` });
        }
        if (!template.startsWith('{root}/')) ctx.addIssue({ code: 'custom', message: 'the path template must start with "{root}/"' });
        if (!template.includes('{user}')) ctx.addIssue({ code: 'custom', message: 'the path template must contain {user} (for one shared Maildir use `mailbox`)' });
        if (/(^|\/)\.\.?(\/|$)/.test(template.replace(/\{[^{}]*\}/g, 'x'))) ctx.addIssue({ code: 'custom', message: 'the path template may not contain "." or ".." components' });
      }),
    /** Known mailboxes: addresses (or bare local parts for every served domain), optionally with their own quota. */
    mailboxes: z.array(mailboxEntry).optional(),
    /** A recipient is known when its mailbox directory already exists. */
    mailboxExists: z.boolean().default(false),
    /** Alias → one or more targets (addresses or bare local parts of the same domain). Keys: addresses or bare local parts. */
    aliases: z.record(addressKey, z.union([addressKey, z.array(addressKey).min(1)])).default({}),
    /** Domain → address that receives mail for unknown users of that domain. */
    catchAll: z.record(domainSchema, addressKey).default({}),
    /** Sub-addressing (`user+tag@`); `false` turns it off. */
    subaddress: z
      .union([
        z.literal(false),
        z.strictObject({
          /** Delimiter characters; any one of them splits (Postfix recipient_delimiter). */
          separator: z.string().min(1).max(8).default('+'),
          /** Deliver `user+tag@` into the Maildir++ folder `.tag` of the mailbox (INBOX if the folder does not exist). */
          folder: z.boolean().default(false),
          /** Create the folder `.tag` when it does not exist (off: anyone could create folders). */
          createFolder: z.boolean().default(false),
        }),
      ])
      .default({ separator: '+', folder: false, createFolder: false }),
    /** Local-part normalization, applied to recipients and to every address in the options. */
    normalize: z
      .strictObject({
        /** Fold the local part to lower case (domains are always folded). */
        lowercase: z.boolean().default(true),
        /** Remove dots from the user part (first.last@ → firstlast@). */
        stripDots: z.boolean().default(false),
        /** Code API only: a last normalization step `(user, domain) => user`. */
        custom: z.custom<LocalPartNormalizer>((fn) => typeof fn === 'function', { message: 'expected a function (user, domain) => string' }).optional(),
      })
      .default({ lowercase: true, stripDots: false }),
    /**
     * Maildir++ folder (e.g. "Junk" → `.Junk`) for messages a spam filter flagged
     * (`tx.data.spam.flagged`, set at `data` by @mailgate/plugin-spam, so before any `queue`):
     * they go there instead of INBOX or a sub-address folder, created when missing, as
     * a Sieve `fileinto "Junk"` would. Unset: flagged mail is delivered like any other.
     */
    spamFolder: z
      .string()
      .refine(isSafeFolderTag, { message: 'expected a folder name of 1-64 letters, digits, "_" or "-" (e.g. "Junk")' })
      .optional(),
    /**
     * Bare `RCPT TO:<postmaster>`: the address it is delivered as (default postmaster@ the
     * first listed domain; `domains` omitted: the first local domain the plugin knows of,
     * see `Mapper.postmasterAddress`).
     */
    postmaster: addressKey.optional(),
    /** Default per-mailbox quota (Maildir++ maildirsize). */
    quota: quotaSchema.optional(),
    /** Mode of delivered files and maildirsize. */
    fileMode: modeSchema(0o777, '0600'),
    /** Mode of created directories (mailboxes, tmp/new/cur, folders). */
    dirMode: modeSchema(0o7777, '0700'),
    /** fsync the message file and the new/ directory before the 250 (off only for tests and throw-away benchmarks). */
    fsync: z.boolean().default(true),
    /** Add `Delivered-To:` with the final mailbox address (true / "final"), the address given at RCPT ("original"), or not (false). */
    deliveredTo: z.union([z.boolean(), z.enum(['final', 'original'])]).default(true),
    /** Add `Return-Path: <sender>`. */
    returnPath: z.boolean().default(true),
    /** Remove files in tmp/ older than `maxAge`, checked when a Maildir is first used and then every `interval`. */
    cleanup: z
      .union([
        z.literal(false),
        z.strictObject({
          maxAge: durationSchema.default(36 * 3_600_000),
          interval: durationSchema.default(8 * 3_600_000),
        }),
      ])
      .default({ maxAge: 36 * 3_600_000, interval: 8 * 3_600_000 }),
    /**
     * Time limit of the queue step (this plugin's `queue` tap; it replaces the gateway's
     * pluginTimeout there). A delivery still writing at 80 % of it gives up cleanly
     * (451, nothing published) rather than be cut off by the core while it may still
     * complete, which would deliver a message the client was told to retry.
     */
    queueTimeout: durationSchema.default(60_000),
    /** Host name in the unique file names (default: the machine's host name). */
    hostname: z.string().min(1).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.mailbox !== undefined) {
      for (const key of ['root', 'mailboxes', 'postmaster'] as const) {
        if (o[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `\`${key}\` cannot be used with \`mailbox\` (single-mailbox mode)` });
      }
      if (o.mailboxExists) ctx.addIssue({ code: 'custom', path: ['mailboxExists'], message: '`mailboxExists` cannot be used with `mailbox` (single-mailbox mode)' });
      if (Object.keys(o.aliases).length > 0) ctx.addIssue({ code: 'custom', path: ['aliases'], message: '`aliases` cannot be used with `mailbox` (single-mailbox mode)' });
      if (Object.keys(o.catchAll).length > 0) ctx.addIssue({ code: 'custom', path: ['catchAll'], message: '`catchAll` cannot be used with `mailbox` (single-mailbox mode)' });
      return;
    } else if (o.root === undefined) {
      ctx.addIssue({ code: 'custom', path: ['root'], message: '`root` is required (or `mailbox` for single-mailbox mode)' });
      return;
    }
    // Aliases, mailboxes and catch-all, normalized as delivery will see them: bad targets and loops.
    const problems: MappingProblem[] = [];
    try {
      new Mapper({ options: o, root: '/', mailbox: undefined, isLocalDomain: () => true, problems });
    } catch (error) {
      problems.push({ path: [], message: (error as Error).message });
    }
    for (const p of problems) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });

/** Options as written in YAML or passed in code. */
export type MaildirOptionsInput = z.input<typeof maildirOptionsSchema>;
/** Options after validation and defaults. */
export type MaildirOptions = z.output<typeof maildirOptionsSchema>;
export type QuotaLimit = NonNullable<MaildirOptions['quota']>;
