/**
 * The configuration of DNS lists (`dnsbl`, `dnswl`, `rhsbl`, `uribl` entries): one zod
 * schema for IP lists and one for domain lists, and the return-code filters they carry.
 *
 * A return code is what a list answers for a listed name, an address in 127.0.0.0/8
 * (RFC 5782 §2.3). Lists encode why something is listed in it (zen.spamhaus.org:
 * 127.0.0.2 SBL, .4 XBL, .10/.11 PBL), so admins filter: postscreen writes
 * `zen.spamhaus.org=127.0.0.[2..11]`, rspamd lists return codes, SpamAssassin and
 * SURBL/URIBL use a bitmask. All three forms are accepted here.
 */
import { z } from 'zod';

export const DOMAIN_CHECKS = ['sender', 'helo', 'from', 'uri'] as const;
/** Where a domain came from: envelope sender, HELO name, From header, a URL in the body. */
export type DomainCheck = (typeof DOMAIN_CHECKS)[number];

/** A predicate on an IPv4 address as an unsigned 32-bit number. */
export type ReturnCodeMatcher = (address: number) => boolean;

const LOOPBACK_NET = 127;

/** `a.b.c.d` → unsigned 32-bit number; undefined when it is not a dotted quad. */
export function ipv4ToNumber(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** One postscreen octet: `2`, `[2..11]`, `[2;4;10..11]` → inclusive ranges. */
function parseOctet(text: string): Array<[number, number]> | undefined {
  const inner = /^\[(.*)\]$/.exec(text)?.[1];
  const parts = inner === undefined ? [text] : inner.split(';');
  const ranges: Array<[number, number]> = [];
  for (const part of parts) {
    const m = /^(\d{1,3})(?:\.\.(\d{1,3}))?$/.exec(part.trim());
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 255 || hi > 255 || lo > hi) return undefined;
    ranges.push([lo, hi]);
  }
  return ranges.length > 0 ? ranges : undefined;
}

/**
 * Parse one return-code filter: an address (`127.0.0.2`), a CIDR (`127.0.0.0/29`) or a
 * postscreen pattern (`127.0.0.[2..11]`, `127.0.[0..1].[2;4]`). Every address it can
 * match must be in 127.0.0.0/8: anything else is never a listing (a wildcarded or
 * hijacked resolver answers with public addresses). Returns an error message instead of
 * a matcher when the text is not one of these.
 */
export function parseReturnCode(text: string): ReturnCodeMatcher | string {
  const t = text.trim();
  if (t.length > 100) return `return code too long: ${JSON.stringify(text.slice(0, 40))}…`;
  const outside = `return code ${JSON.stringify(text)} reaches outside 127.0.0.0/8, where no list answers`;
  const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(t);
  if (cidr) {
    const network = ipv4ToNumber(cidr[1]!);
    const prefix = Number(cidr[2]);
    if (network === undefined || prefix > 32) return `not an IPv4 network: ${JSON.stringify(text)}`;
    if (prefix < 8 || Math.floor(network / 2 ** 24) !== LOOPBACK_NET) return outside;
    const size = 2 ** (32 - prefix);
    const base = network - (network % size);
    return (address) => address >= base && address < base + size;
  }
  const exact = ipv4ToNumber(t);
  if (exact !== undefined) {
    if (Math.floor(exact / 2 ** 24) !== LOOPBACK_NET) return outside;
    return (address) => address === exact;
  }
  const octetTexts = t.split(/\.(?![.\d;]*\])/); // dots that are not inside [..]
  if (octetTexts.length === 4) {
    const octets = octetTexts.map(parseOctet);
    if (octets.every((o) => o !== undefined)) {
      const [first] = octets;
      if (!first || first.some(([lo, hi]) => lo !== LOOPBACK_NET || hi !== LOOPBACK_NET)) return outside;
      return (address) =>
        octets.every((ranges, i) => {
          const octet = Math.floor(address / 2 ** (8 * (3 - i))) % 256;
          return ranges.some(([lo, hi]) => octet >= lo && octet <= hi);
        });
    }
  }
  return `not a return code (an address, CIDR or pattern like 127.0.0.[2..11]): ${JSON.stringify(text)}`;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Whether every label of `name` (lower case, no trailing dot) is 1..63 letters, digits,
 * hyphens and underscores, without a hyphen at either end: what a list zone, and a
 * domain looked up in one, may be made of. The length of the whole is the caller's bound.
 */
export function hasDnsListLabels(name: string): boolean {
  return name.split('.').every((label) => LABEL.test(label));
}

/**
 * A zone as it is appended to query names: lower case, no trailing dot, labels as
 * hasDnsListLabels. Query prefixes add up to 64 octets (an IPv6 address in nibbles), so a
 * zone longer than 180 octets could never be queried.
 */
const zoneSchema = z
  .string()
  .transform((zone) => zone.trim().toLowerCase().replace(/\.$/, ''))
  .refine((zone) => zone.length > 0 && zone.length <= 180 && hasDnsListLabels(zone), {
    error: 'must be a DNS zone name (letters, digits, hyphens; at most 180 characters)',
  });

const returnCodesSchema = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((value) => (Array.isArray(value) ? value : [value]))
  .superRefine((codes, ctx) => {
    for (const [i, code] of codes.entries()) {
      const matcher = parseReturnCode(code);
      if (typeof matcher === 'string') ctx.addIssue({ code: 'custom', message: matcher, path: [i] });
    }
  });

// eslint-disable-next-line no-control-regex
const nameSchema = z.string().min(1).max(100).regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be a single line without control characters' });

const listFields = {
  /** The DNS zone, e.g. `zen.spamhaus.org`; the query is `<reversed ip or domain>.<zone>`. */
  zone: zoneSchema,
  /** Added to the message's score when listed: positive for blocklists, negative for allowlists (DNSWL). */
  weight: z.number(),
  /**
   * Only these answers count as listings (addresses, CIDRs, postscreen patterns). Without
   * `returnCodes` and `bitmask` any answer in 127.0.0.0/8 counts, except 127.0.0.1 and
   * 127.0.0.255, which lists use for "query refused" (RFC 5782 §5, URIBL, SURBL, DNSWL).
   */
  returnCodes: returnCodesSchema.optional(),
  /** SURBL/URIBL style: an answer counts when `answer & bitmask` is not 0 (as SpamAssassin's check_rbl_sub). */
  bitmask: z.int().min(1).max(0xffffffff).optional(),
  /** Shown in logs and headers; default: the zone. Two entries on one zone need different names. */
  name: nameSchema.optional(),
};

export const ipListSchema = z.strictObject(listFields).transform(({ name, ...list }) => ({ ...list, name: name ?? list.zone }));

export const domainListSchema = z
  .strictObject({
    ...listFields,
    /** Which domains of a message to look up; default all of them. */
    check: z.array(z.enum(DOMAIN_CHECKS)).min(1).optional(),
  })
  .transform(({ name, check, ...list }) => ({ ...list, name: name ?? list.zone, check: [...new Set(check ?? DOMAIN_CHECKS)] }));

/** An IP list (DNSBL or DNSWL) after validation. */
export type IpList = z.output<typeof ipListSchema>;
/** A domain list (RHSBL, URI blocklist) after validation. */
export type DomainList = z.output<typeof domainListSchema>;
export type IpListConfig = z.input<typeof ipListSchema>;
export type DomainListConfig = z.input<typeof domainListSchema>;
