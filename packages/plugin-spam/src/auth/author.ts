/**
 * The author addresses of a message (RFC5322.From), for DMARC: read by the plugin itself,
 * not taken from mailauth, so that nothing a sender does can make them disappear:
 *
 * - the From: fields are found by dkim.ts's linear pass over the header block, however
 *   many lines it has (mailauth's own header parser is not run on a block over
 *   MAX_HEADER_LINES, and so used to report no From: at all);
 * - group syntax (RFC 5322 §3.4, `From: grp: ceo@example.com;`) yields the group's
 *   addresses (mailauth dropped them);
 * - From: fields longer than MAX_FROM_BYTES in all are not parsed (the address parser
 *   mailauth bundles, nodemailer's, is quadratic: 400 KB of addresses block the event loop
 *   for over a second) and are not handed to mailauth either;
 * - what cannot be read is reported as `problem`: DMARC then fails closed (dmarc.ts).
 */
import { createRequire } from 'node:module';

interface ParsedAddress {
  name?: string;
  address?: string;
  group?: ParsedAddress[];
}

// The parser mailauth itself uses (its own nodemailer), loaded by mailauth's path.
const addressparser = createRequire(createRequire(import.meta.url).resolve('mailauth/package.json'))('nodemailer/lib/addressparser') as (value: string) => ParsedAddress[];

/**
 * From: fields longer than this, in all, are not parsed: a real From: holds one address,
 * a few at most (RFC 5322 allows several authors); 8 KiB is over a hundred of them, and
 * parsing it costs well under a millisecond.
 */
export const MAX_FROM_BYTES = 8192;

export interface Authors {
  /** every address of every From: field (group members included), as written */
  addresses: string[];
  /** why the From: field(s) could not be fully read; undefined when they could (or there are none) */
  problem?: string;
  /** the From: fields were over MAX_FROM_BYTES and not parsed (nor may mailauth parse them) */
  tooLarge: boolean;
}

/** The authors of the From: fields at the given byte ranges of `raw` (whole fields, name included). */
export function authorsOf(raw: Buffer, fields: ReadonlyArray<readonly [number, number]>): Authors {
  const size = fields.reduce((n, [start, end]) => n + end - start, 0);
  if (size > MAX_FROM_BYTES) {
    return { addresses: [], problem: `From: of ${size} bytes not evaluated (more than ${MAX_FROM_BYTES})`, tooLarge: true };
  }
  const addresses: string[] = [];
  let problem: string | undefined;
  for (const [start, end] of fields) {
    const field = raw.toString('utf8', start, end);
    const value = field.slice(field.indexOf(':') + 1).replace(/\r?\n/g, '').trim();
    const found: string[] = [];
    let unreadable = false;
    const walk = (list: ParsedAddress[]): void => {
      for (const entry of list) {
        if (Array.isArray(entry.group)) walk(entry.group);
        else if (entry.address) found.push(entry.address);
        else unreadable = true;
      }
    };
    walk(addressparser(value));
    addresses.push(...found);
    if (found.length === 0) problem ??= 'From: field without an address';
    else if (unreadable) problem ??= 'From: field with an unreadable author';
  }
  return { addresses, tooLarge: false, ...(problem ? { problem } : {}) };
}
