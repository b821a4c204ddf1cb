/**
 * DKIM verification (RFC 6376; Ed25519 of RFC 8463) of a message the plugin already read,
 * by mailauth, within bounds: only the first `maxSignatures` DKIM-Signature fields are
 * verified (rspamd's default is 5), the message is at most maxScanSize bytes (the caller
 * only passes what it read), a header block too large for mailauth's header parser is not
 * verified at all, and DNS goes through the adapter (limited, abortable).
 *
 * mailauth reports some outcomes as `neutral` that RFC 6376 calls PERMFAIL; they are
 * mapped to RFC 8601's words here: a body hash mismatch is `fail`, a missing or unusable
 * key `permerror` (RFC 6376 §6.1.2: "no key for signature" is a PERMFAIL).
 */
import { authorsOf } from './author.js';
import { dkimVerify, type MailauthDkimResult, type MailauthResolver } from './mailauth.js';

export type DkimResultCode = 'pass' | 'fail' | 'neutral' | 'temperror' | 'permerror' | 'policy' | 'none';

export interface DkimSignatureResult {
  result: DkimResultCode;
  /** d= */
  domain?: string | undefined;
  /** s= */
  selector?: string | undefined;
  /** a= */
  algorithm?: string | undefined;
  /** the first 8 characters of b=, to tell signatures apart (RFC 6008 header.b) */
  b?: string | undefined;
  /** why, for people */
  comment?: string | undefined;
  /** l= left part of the body unsigned (RFC 6376 §8.2: content could have been added) */
  partialBody?: boolean;
}

export interface DkimCheck {
  /** one per verified signature; [{ result: 'none' }] for an unsigned message */
  signatures: DkimSignatureResult[];
  /** the addresses of the From: field(s), for DMARC (read by author.ts, not by mailauth) */
  headerFrom: string[];
  /** why the From: field(s) could not be fully read (too large, an author without an address): DMARC fails closed */
  fromProblem?: string | undefined;
  /** the From: field(s) were too large to read at all (their authors are unknown) */
  fromTooLarge?: boolean;
  /** DKIM-Signature fields present, and how many were left unverified past the limit */
  total: number;
  skipped: number;
}

export interface DkimOptions {
  resolver: MailauthResolver;
  /** verify at most this many signatures (the topmost, the newest); default 5 */
  maxSignatures?: number;
}

/**
 * mailauth's header parser joins folded lines with Array.splice, quadratic in the number
 * of lines: 512 KiB of folded lines takes it minutes. Real header blocks have hundreds of
 * lines (long Received: chains); a block with more is not verified.
 */
export const MAX_HEADER_LINES = 2000;

/**
 * A real DKIM-Signature field is under 2 KiB (a 4096-bit RSA b= is 684 characters).
 * mailauth looks up each h= name among all header fields: a field with 100 000 names in
 * h= costs it seconds. Longer fields are not handed to it.
 */
export const MAX_SIGNATURE_FIELD = 8192;

export async function verifyDkim(raw: Buffer, options: DkimOptions): Promise<DkimCheck> {
  const max = Math.max(0, options.maxSignatures ?? 5);
  const head = headerBlock(raw);
  // The authors are read here, from every From: field however long the header block: a
  // sender must not be able to hide its From: from DMARC.
  const authors = authorsOf(raw, head.from);
  const from = { headerFrom: authors.addresses, ...(authors.problem ? { fromProblem: authors.problem } : {}), ...(authors.tooLarge ? { fromTooLarge: true } : {}) };
  // Neither is handed to mailauth: its header parser is quadratic in lines, its address parser in From: bytes.
  const refused = head.lines > MAX_HEADER_LINES ? `header block of ${head.lines} lines not verified (more than ${MAX_HEADER_LINES})` : authors.tooLarge ? `not verified: ${authors.problem}` : undefined;
  if (refused) {
    return { signatures: [{ result: head.signatures.length > 0 ? 'neutral' : 'none', comment: refused }], ...from, total: head.signatures.length, skipped: head.signatures.length };
  }
  const total = head.signatures.length;
  const skipped = Math.max(0, total - max);
  const considered = head.signatures.slice(0, max);
  const tooLong = considered.filter(([start, end]) => end - start > MAX_SIGNATURE_FIELD);
  const removed = [...tooLong, ...head.signatures.slice(max)].sort((a, b) => a[0] - b[0]);
  // Unsigned (the common case for spam): mailauth is still what reads From: for DMARC, but
  // the header block is all it needs; its pass over a 100 KB body cost 5 ms for nothing.
  // An ARC set is verified with the signatures, so with one it gets the whole message.
  const unsigned = total === 0 && !/^arc-/im.test(raw.toString('latin1', 0, head.end));
  const input = unsigned ? raw.subarray(0, head.end) : removed.length > 0 ? withoutFields(raw, removed) : raw;
  const output = await dkimVerify(input, { resolver: options.resolver });
  const verified = output.results.filter((r) => r.status.result !== 'none');
  const signatures = verified.map(mapResult);
  // mailauth leaves out signatures it cannot even try (unknown a=, no d= or s=): RFC 8601 neutral.
  const unusable = considered.length - tooLong.length - verified.length;
  for (let i = 0; i < unusable; i++) signatures.push({ result: 'neutral', comment: 'signature not usable (syntax, algorithm or canonicalization)' });
  for (let i = 0; i < tooLong.length; i++) signatures.push({ result: 'neutral', comment: `signature field longer than ${MAX_SIGNATURE_FIELD} bytes, not verified` });
  if (signatures.length === 0) signatures.push({ result: 'none', comment: 'message not signed' });
  return { signatures, ...from, total, skipped };
}

function mapResult(r: MailauthDkimResult): DkimSignatureResult {
  const comment = r.status.comment;
  let result: DkimResultCode;
  switch (r.status.result) {
    case 'pass':
      result = 'pass';
      break;
    case 'fail':
      result = 'fail';
      break;
    case 'temperror':
      result = 'temperror';
      break;
    case 'policy':
      result = 'policy';
      break;
    default:
      if (comment === 'body hash did not verify') result = 'fail';
      else if (comment === 'no key' || comment === 'invalid public key' || comment === 'unknown key version' || comment === 'unknown key type') result = 'permerror';
      else result = 'neutral';
  }
  const out: DkimSignatureResult = {
    result,
    domain: r.signingDomain || undefined,
    selector: r.selector || undefined,
    algorithm: r.algo || undefined,
    b: typeof r.signature === 'string' ? r.signature.replace(/\s+/g, '').slice(0, 8) : undefined,
    comment: comment ?? (r.status.result === 'policy' ? 'key too short' : undefined),
  };
  if (r.canonBodyLengthLimited && (r.status.underSized ?? 0) > 0) out.partialBody = true;
  return out;
}

interface HeaderBlock {
  /** offset just past the blank line ending the header (or raw.length) */
  end: number;
  lines: number;
  /** byte ranges of the DKIM-Signature fields, top first */
  signatures: Array<[number, number]>;
  /** byte ranges of the From: fields, top first */
  from: Array<[number, number]>;
}

/** One linear pass over the header block: its end, its line count, the DKIM-Signature and From: fields. */
function headerBlock(raw: Buffer): HeaderBlock {
  const signatures: Array<[number, number]> = [];
  const from: Array<[number, number]> = [];
  let lines = 0;
  let pos = 0;
  let field: [number, number] | undefined;
  let end = raw.length;
  while (pos < raw.length) {
    let eol = raw.indexOf(0x0a, pos);
    const next = eol < 0 ? raw.length : eol + 1;
    if (eol < 0) eol = raw.length;
    const blank = eol - pos === 0 || (eol - pos === 1 && raw[pos] === 0x0d);
    if (blank) {
      end = next;
      break;
    }
    lines++;
    const continued = raw[pos] === 0x20 || raw[pos] === 0x09;
    if (continued) {
      if (field) field[1] = next;
    } else {
      if (isField(raw, pos, NAME)) signatures.push((field = [pos, next]));
      else if (isField(raw, pos, 'from')) from.push((field = [pos, next]));
      else field = undefined;
    }
    pos = next;
  }
  return { end, lines, signatures, from };
}

const NAME = 'dkim-signature';

/** Whether the field at `pos` is named `name` (lower case), as mailauth's header parser reads names. */
function isField(raw: Buffer, pos: number, name: string): boolean {
  if (raw.length < pos + name.length + 1) return false;
  if (raw.toString('latin1', pos, pos + name.length).toLowerCase() !== name) return false;
  // "DKIM-Signature:" or "DKIM-Signature :" (obsolete syntax, RFC 5322 §4.5)
  let i = pos + name.length;
  while (raw[i] === 0x20 || raw[i] === 0x09) i++;
  return raw[i] === 0x3a;
}

/**
 * The message without the given fields (signatures past the limit, and ones too long to
 * hand to mailauth): a kept signature covering DKIM-Signature in h= (rare) may then select
 * another instance and fail, which only costs the sender of such a message its DKIM_VALID.
 */
function withoutFields(raw: Buffer, ranges: ReadonlyArray<[number, number]>): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const [start, stop] of ranges) {
    parts.push(raw.subarray(at, start));
    at = stop;
  }
  parts.push(raw.subarray(at));
  return Buffer.concat(parts);
}
