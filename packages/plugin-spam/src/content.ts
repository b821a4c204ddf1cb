/**
 * What every content check (header and body rules, URI blocklists, Bayes) reads: a
 * message parsed once, with postal-mime, into plain strings.
 *
 * Hostile input is the normal case here, so parseContent never throws: only the head
 * of a huge message is parsed (`maxBytes`, like SpamAssassin's and rspamd's size limits
 * on what they scan), and when postal-mime gives up (absurd nesting, a header block over
 * its limit) a minimal header/body split of our own still yields what rules can use.
 *
 * Text choice: `text` is what a reader sees: every text/plain part, and a text/html
 * part turned into text (htmlToText below) only where its multipart/alternative (or
 * the message) has no plain part. Both halves of an alternative usually say the same thing,
 * so adding the HTML rendering as well would double body-rule hits without new
 * information; what spammers hide in HTML only (invisible text, links) stays reachable
 * through `html` and `urls`, which are built from every HTML part.
 */
import PostalMime, { decodeWords, type Email } from 'postal-mime';
import './postal-mime-join.js';

/** One header field: the name as written (compare case-insensitively), the value unfolded and RFC 2047-decoded. */
export interface HeaderField {
  name: string;
  value: string;
}

/** An attachment as listed (its content is not kept, nor read by any check). */
export interface AttachmentInfo {
  /** The decoded file name, '' when the part has none. */
  filename: string;
  /** The lowercased Content-Type value, e.g. 'application/pdf'. */
  mimeType: string;
  /** The decoded size in bytes. */
  size: number;
}

export interface MessageContent {
  /** Top-level header fields in order (at most MAX_HEADER_FIELDS), unfolded, RFC 2047-decoded. */
  headers: ReadonlyArray<HeaderField>;
  /** The decoded Subject ('' if none). */
  subject: string;
  /** The decoded first From field as written, e.g. 'Ann <ann@example.com>' ('' if none). */
  from: string;
  /** The text/plain parts, plus HTML parts rendered as text where they have no plain alternative. */
  text: string;
  /** The raw HTML parts joined by '\n' ('' if none). */
  html: string;
  /** Absolute http(s) URLs from the text and from href/src attributes, normalized by WHATWG URL, deduplicated, at most MAX_URLS. */
  urls: string[];
  /**
   * The distinct hosts of `urls`, in order of first appearance, as WHATWG URL gives them
   * (lower case, IDNs in punycode, an IPv6 address in brackets): URI blocklists and Bayes
   * read these instead of parsing every URL again.
   */
  urlHosts: string[];
  /** Non-text parts (and text parts sent as attachments), at most MAX_ATTACHMENTS. */
  attachments: ReadonlyArray<AttachmentInfo>;
  /** The raw message was larger than maxBytes and only its head was parsed. */
  truncated: boolean;
}

export interface ParseContentOptions {
  /** Bytes of the raw message that are parsed (default 512 KiB); the rest is ignored. */
  maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 512 * 1024;
/**
 * Header fields kept: a message with more is abuse, and rules loop over this list. Past
 * the cap the first field of each name in ESSENTIAL_FIELDS is still kept (at most that
 * many more): a sender must not make From:, Subject: or Date: vanish, and the MISSING_*
 * rules fire, by putting a thousand other fields above them.
 */
export const MAX_HEADER_FIELDS = 1000;
const ESSENTIAL_FIELDS = ['from', 'to', 'cc', 'subject', 'date', 'message-id', 'sender', 'reply-to'];

/** Collects header fields up to MAX_HEADER_FIELDS, then only the first of each essential name not yet seen. */
class HeaderList {
  readonly fields: HeaderField[] = [];
  private readonly missing = new Set(ESSENTIAL_FIELDS);

  /** false: nothing more will be kept (the caller may stop) */
  add(name: string, value: string): boolean {
    const lower = name.trim().toLowerCase();
    if (this.fields.length < MAX_HEADER_FIELDS || this.missing.has(lower)) {
      this.fields.push({ name, value });
      this.missing.delete(lower);
    }
    return this.fields.length < MAX_HEADER_FIELDS || this.missing.size > 0;
  }
}
export const MAX_URLS = 100;
export const MAX_ATTACHMENTS = 100;
/** Longer URLs are skipped: no real link needs them and they only cost regex time downstream. */
const MAX_URL_LENGTH = 2048;
/** MIME nesting postal-mime accepts before it gives up (its default 256 only bounds the stack). */
const MAX_NESTING_DEPTH = 64;

/** Parse a raw message (an mbox "From " line first is skipped). Never rejects. */
export async function parseContent(raw: Uint8Array, options: ParseContentOptions = {}): Promise<MessageContent> {
  const maxBytes = positiveInteger(options.maxBytes, DEFAULT_MAX_BYTES);
  let bytes = skipMboxFromLine(raw);
  const truncated = bytes.length > maxBytes;
  if (truncated) bytes = bytes.subarray(0, maxBytes);
  try {
    return await parseWithPostalMime(bytes, truncated);
  } catch {
    // postal-mime refuses some hostile structures outright; headers and raw text still feed the rules.
    return parseMinimal(bytes, truncated);
  }
}

function positiveInteger(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
}

/** mbox files (and the SpamAssassin corpus) start each message with "From sender date". */
function skipMboxFromLine(raw: Uint8Array): Uint8Array {
  // "From "
  if (raw.length < 5 || raw[0] !== 0x46 || raw[1] !== 0x72 || raw[2] !== 0x6f || raw[3] !== 0x6d || raw[4] !== 0x20) {
    return raw;
  }
  const end = raw.indexOf(0x0a);
  return end < 0 ? raw.subarray(raw.length) : raw.subarray(end + 1);
}

type TextEntryItems = Array<{ type: string; value: unknown }>;
type TextEntries = Map<unknown, { plain?: TextEntryItems; html?: TextEntryItems }>;

/**
 * postal-mime with our own rendering of `text`. Its renderer turns HTML into text with
 * regexes that take quadratic time on crafted HTML (60 000 unclosed `<a href=` take
 * 45 s), and it renders an HTML-only message as no text at all. This override (of an
 * internal method, stable across 4.x; if it ever stops being called, postal-mime's own
 * rendering is used) takes each part's plain text, or its HTML through htmlToText.
 */
class ContentParser extends PostalMime {
  renderTextContent(): void {
    const self = this as unknown as { textMap?: unknown; textContent?: Record<string, string> };
    if (!(self.textMap instanceof Map)) {
      (PostalMime.prototype as unknown as { renderTextContent?: () => void }).renderTextContent?.call(this);
      return;
    }
    const parts: string[] = [];
    for (const entry of (self.textMap as TextEntries).values()) {
      const plain = (entry.plain ?? []).filter(isText);
      if (plain.length > 0) for (const item of plain) parts.push(item.value);
      else for (const item of (entry.html ?? []).filter(isText)) parts.push(htmlToText(item.value));
    }
    self.textContent = parts.length > 0 ? { plain: parts.join('\n') } : {};
  }
}

function isText(item: { type: string; value: unknown }): item is { type: 'text'; value: string } {
  return item.type === 'text' && typeof item.value === 'string';
}

async function parseWithPostalMime(bytes: Uint8Array, truncated: boolean): Promise<MessageContent> {
  const parser = new ContentParser({ maxNestingDepth: MAX_NESTING_DEPTH, maxRfc822NestingDepth: 3 });
  const email: Email = await parser.parse(bytes);
  const list = new HeaderList();
  for (const header of email.headers) {
    // decoded only when kept
    if (!list.add(header.originalKey, header.value)) break;
  }
  const headers = list.fields;
  for (const header of headers) header.value = safeDecodeWords(header.value);
  const html = rawHtmlParts(parser, email);
  const text = email.text ?? '';
  const attachments: AttachmentInfo[] = [];
  for (const attachment of email.attachments) {
    if (attachments.length >= MAX_ATTACHMENTS) break;
    const content = attachment.content;
    const size = typeof content === 'string' ? content.length : (content?.byteLength ?? 0);
    attachments.push({ filename: attachment.filename ?? '', mimeType: attachment.mimeType ?? '', size });
  }
  return {
    headers,
    subject: email.subject ?? '',
    from: firstHeader(headers, 'from'),
    text,
    html,
    ...extractUrls(text, html),
    attachments,
    truncated,
  };
}

/**
 * postal-mime's `email.html` renders plain-only parts as HTML too, which would make
 * every message look like an HTML message to rules. Its per-part map (internal, but
 * stable across 4.x) tells the real HTML parts; if it ever goes away we fall back to
 * `email.html` rather than lose HTML altogether.
 */
function rawHtmlParts(parser: PostalMime, email: Email): string {
  const textMap = (parser as unknown as { textMap?: unknown }).textMap;
  if (!(textMap instanceof Map)) return email.html ?? '';
  const parts: string[] = [];
  for (const entry of (textMap as TextEntries).values()) {
    for (const item of entry.html ?? []) {
      if (item.type === 'text' && typeof item.value === 'string') parts.push(item.value);
    }
  }
  return parts.join('\n');
}

const BLOCK_TAGS = new Set(['br', 'p', 'div', 'tr', 'li', 'ul', 'ol', 'table', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'blockquote', 'pre', 'title', 'dd', 'dt']);
/** A tag cannot contain '<': this keeps each match attempt from scanning past the next tag (linear time). */
const TAG = /<(\/?)([a-z][a-z0-9]*)\b[^<>]*>|<![^<>]*>|<\?[^<>]*>/gi;

/**
 * HTML as a reader sees it, in linear time: comments, scripts and styles dropped,
 * block tags turned into line breaks, inline tags into nothing (so "V<b></b>iagra"
 * reads "Viagra", as it does on screen), entities decoded.
 */
export function htmlToText(html: string): string {
  let visible = removeBetween(html, '<!--', '-->');
  visible = removeElement(visible, 'script');
  visible = removeElement(visible, 'style');
  visible = removeElement(visible, 'head');
  const text = visible.replace(TAG, (_whole, _slash: string | undefined, name: string | undefined) =>
    name !== undefined && BLOCK_TAGS.has(name.toLowerCase()) ? '\n' : '',
  );
  return decodeEntities(text)
    .replace(/[ \t\r\f\v\u00a0]+/g, ' ')
    .replace(/ ?\n[\s]*/g, '\n')
    .trim();
}

/** Drop every `open`…`close` span (and an unclosed one to the end), by indexOf: no regex backtracking. */
function removeBetween(text: string, open: string, close: string): string {
  let result = '';
  let at = 0;
  const lower = text.toLowerCase();
  for (;;) {
    const start = lower.indexOf(open, at);
    if (start < 0) return result + text.slice(at);
    result += text.slice(at, start) + ' ';
    const end = lower.indexOf(close, start + open.length);
    if (end < 0) return result;
    at = end + close.length;
  }
}

function removeElement(text: string, name: string): string {
  let result = '';
  let at = 0;
  const lower = text.toLowerCase();
  for (;;) {
    const start = lower.indexOf(`<${name}`, at);
    if (start < 0) return result + text.slice(at);
    const next = lower.charCodeAt(start + name.length + 1);
    // "<scripture>" or "<header>" are not the element.
    if (!(next === 0x3e || next === 0x20 || next === 0x09 || next === 0x0a || next === 0x0d || next === 0x2f || Number.isNaN(next))) {
      result += text.slice(at, start + 1);
      at = start + 1;
      continue;
    }
    result += text.slice(at, start) + ' ';
    const end = lower.indexOf(`</${name}`, start);
    if (end < 0) return result;
    const close = lower.indexOf('>', end);
    at = close < 0 ? text.length : close + 1;
  }
}

/** HTML 4's Latin-1 entity names, for the code points 160..255 in order. */
const LATIN1_ENTITIES = (
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para ' +
  'middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute ' +
  'Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute ' +
  'THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ' +
  'ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml'
).split(' ');
const ENTITIES = new Map<string, string>([
  ...LATIN1_ENTITIES.map((name, i): [string, string] => [name, String.fromCharCode(160 + i)]),
  ['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"], ['euro', '€'], ['trade', '™'],
  ['mdash', '—'], ['ndash', '–'], ['hellip', '…'], ['bull', '•'], ['lsquo', '‘'], ['rsquo', '’'], ['sbquo', '‚'],
  ['ldquo', '“'], ['rdquo', '”'], ['bdquo', '„'], ['dagger', '†'], ['permil', '‰'], ['lsaquo', '‹'], ['rsaquo', '›'],
  ['oelig', 'œ'], ['OElig', 'Œ'], ['scaron', 'š'], ['Scaron', 'Š'], ['zwnj', ''], ['zwj', ''], ['thinsp', ' '],
  ['ensp', ' '], ['emsp', ' '], ['hearts', '♥'], ['rarr', '→'], ['larr', '←'],
]);

/** Numeric entities, and the named ones mail uses (HTML 4's set and then some); unknown ones stay as written. */
function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z][a-z0-9]{1,7});?/gi, (whole, entity: string) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES.get(entity) ?? ENTITIES.get(entity.toLowerCase()) ?? whole;
  });
}

function firstHeader(headers: ReadonlyArray<HeaderField>, name: string): string {
  for (const header of headers) if (header.name.toLowerCase() === name) return header.value.trim();
  return '';
}

function safeDecodeWords(value: string): string {
  try {
    return decodeWords(value);
  } catch {
    return value;
  }
}

/**
 * The fallback when postal-mime throws: split the header block from the body, unfold,
 * decode what can be decoded, and hand the body over as text undecoded.
 */
function parseMinimal(bytes: Uint8Array, truncated: boolean): MessageContent {
  const whole = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const split = /\r?\n\r?\n/.exec(whole);
  const headerBlock = split ? whole.slice(0, split.index) : whole;
  const body = split ? whole.slice(split.index + split[0].length) : '';
  const list = new HeaderList();
  const headers = list.fields;
  // the field the continuation lines belong to, if it was kept
  let last: HeaderField | undefined;
  for (const line of headerBlock.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      if (last) last.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const before = headers.length;
    if (!list.add(line.slice(0, colon).trim(), line.slice(colon + 1).trim())) {
      if (headers.length === before) break;
    }
    last = headers.length > before ? headers[headers.length - 1] : undefined;
  }
  for (const header of headers) header.value = safeDecodeWords(header.value);
  return {
    headers,
    subject: firstHeader(headers, 'subject'),
    from: firstHeader(headers, 'from'),
    text: body,
    html: '',
    ...extractUrls(body, ''),
    attachments: [],
    truncated,
  };
}

// Stops at whitespace, quotes, angle brackets and the characters that cannot appear
// unescaped in a URL; trailing sentence punctuation is trimmed afterwards.
const TEXT_URL = /\b(?:https?:\/\/|www\.)[^\s<>"'`{}|\\^[\]]+/gi;
const HTML_URL_ATTRIBUTE = /\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi;

/**
 * Absolute http(s) URLs, in order of appearance: text first, then HTML attributes, and
 * their distinct hosts. Schemeless "www." links count as http:// ones, as SpamAssassin's
 * and rspamd's URI checks read them. Each URL is parsed here, once per message.
 */
export function extractUrls(text: string, html: string): { urls: string[]; urlHosts: string[] } {
  const found = new Set<string>();
  const hosts = new Set<string>();
  const result = () => ({ urls: [...found], urlHosts: [...hosts] });
  const add = (candidate: string): boolean => {
    const url = normalizeUrl(candidate);
    if (url !== undefined) {
      found.add(url.href);
      hosts.add(url.hostname);
    }
    return found.size < MAX_URLS;
  };
  for (const match of text.matchAll(TEXT_URL)) {
    if (!add(trimTrailingPunctuation(match[0]))) return result();
  }
  for (const match of html.matchAll(HTML_URL_ATTRIBUTE)) {
    const value = match[1] ?? match[2] ?? match[3] ?? '';
    if (!add(decodeAttributeEntities(value.trim()))) return result();
  }
  for (const match of html.matchAll(TEXT_URL)) {
    // Links written as text inside HTML (rendered into `text` only where there is no plain alternative).
    if (!add(trimTrailingPunctuation(decodeAttributeEntities(match[0])))) return result();
  }
  return result();
}

const TRAILING_PUNCTUATION = new Set('.,;:!?)]}>*\'"');

/**
 * `url` without trailing sentence punctuation. A loop, not `/[.,;…]+$/`: that regex is
 * tried at every position of a run of such characters and scans to the run's end each
 * time, so a link followed by 500 000 dots and a letter took minutes of CPU.
 */
function trimTrailingPunctuation(url: string): string {
  let end = url.length;
  while (end > 0 && TRAILING_PUNCTUATION.has(url[end - 1]!)) end--;
  return url.slice(0, end);
}

function normalizeUrl(candidate: string): URL | undefined {
  if (candidate.length === 0 || candidate.length > MAX_URL_LENGTH) return undefined;
  let absolute = candidate;
  if (/^www\./i.test(absolute)) absolute = `http://${absolute}`;
  if (!/^https?:\/\//i.test(absolute)) return undefined;
  try {
    const url = new URL(absolute);
    return url.hostname === '' ? undefined : url;
  } catch {
    return undefined;
  }
}

/** Entities in attribute values (&amp; between query parameters, obfuscated &#104;ttp). */
function decodeAttributeEntities(value: string): string {
  return decodeEntities(value);
}
