/**
 * The Bayes tokenizer: what features of a message the classifier counts. It follows
 * SpamBayes and SpamAssassin's Bayes: lowercased body words of 3..40 characters, a
 * "skip:" token for longer runs (base64 junk, hashes), header tokens prefixed by the
 * header they came from (the same word means something else in Subject than in
 * Received), URL host tokens, and a few structure tokens (which headers are present,
 * whether there is HTML, attachment types). Each token counts once per message.
 *
 * Headers that spam filters (ours included) add are ignored: learning from a previous
 * filter's verdict would make the classifier repeat it instead of reading the message.
 *
 * Work is bounded: at most `maxTextChars` of body text are read and at most
 * `maxTokens` tokens are returned, header and URL tokens first.
 */
import { getDomain } from 'tldts';
import type { HeaderField, MessageContent } from '../content.js';

export interface TokenizeOptions {
  /** Most tokens returned for one message (default 3000). */
  maxTokens?: number;
  /** Characters of body text read (default 100 000, SpamAssassin reads 50 000 per part). */
  maxTextChars?: number;
}

export const DEFAULT_MAX_TOKENS = 3000;
export const DEFAULT_MAX_TEXT_CHARS = 100_000;
const MIN_WORD = 3;
const MAX_WORD = 40;
/** Received headers read, from the top (the ones nearest to us say the most). */
const MAX_RECEIVED = 8;
const MAX_RECIPIENTS = 20;

/** Headers written by spam and virus filters, ours included. */
const FILTER_HEADER = /^x-(?:spam|virus|bogosity|spambayes|dspam|rspamd|mailgate|mailscanner|pyzor|dcc|razor|amavis|ham-report)/i;

/** Words are split on whitespace and on punctuation that does not occur inside words, URLs or prices. */
const WORD_SEPARATORS = /[\s()<>[\]{}"“”«»,;=*#|\\^`~+]+/;
/** Stripped from the start of a word, and (all but "!") from its end. */
const LEADING_PUNCTUATION = new Set("-.'!?:_/&");
const TRAILING_PUNCTUATION = new Set("-.'?:_/&");
const SUBJECT_WORD = /[\p{L}\p{N}$%'!-]+/gu;
const HOSTNAME = /\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b/gi;
const IPV4 = /\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}\b/g;
const ADDRESS = /([^\s<>"@,;]+)@([a-z0-9.-]+\.[a-z]{2,63})/i;
/**
 * ADDRESS is tried at every position of a run of local-part characters and scans the
 * whole run each time: quadratic. Header values reach 2 MB in postal-mime, so they are
 * searched only this far (an address is at most 254 characters, RFC 5321 §4.5.3.1.3).
 */
const MAX_ADDRESS_FIELD = 1000;

function findAddress(value: string): RegExpExecArray | null {
  return ADDRESS.exec(value.length > MAX_ADDRESS_FIELD ? value.slice(0, MAX_ADDRESS_FIELD) : value);
}

/** The tokens of one message, deduplicated, header and URL tokens first. Never throws. */
export function tokenize(content: MessageContent, options: TokenizeOptions = {}): string[] {
  const tokens = new TokenSet(options.maxTokens ?? DEFAULT_MAX_TOKENS);
  headerTokens(content, tokens);
  urlTokens(content.urlHosts, tokens);
  attachmentTokens(content, tokens);
  htmlTokens(content.html, tokens);
  bodyTokens(content.text.slice(0, options.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS), tokens);
  return tokens.values();
}

/** A Set that stops accepting at its bound and keeps tokens free of line breaks (the store writes one a line). */
class TokenSet {
  private readonly set = new Set<string>();
  constructor(private readonly max: number) {}
  get full(): boolean {
    return this.set.size >= this.max;
  }
  add(token: string): void {
    if (this.set.size < this.max) this.set.add(/[\x00-\x1f\x7f]/.test(token) ? token.replace(/[\x00-\x1f\x7f]+/g, ' ') : token);
  }
  values(): string[] {
    return [...this.set];
  }
}

function headerTokens(content: MessageContent, tokens: TokenSet): void {
  let received = 0;
  let recipients = 0;
  let hasMessageId = false;
  const seenNames = new Set<string>();
  for (const header of content.headers) {
    const name = header.name.toLowerCase();
    if (FILTER_HEADER.test(name)) continue;
    if (!seenNames.has(name) && seenNames.size < 100) {
      seenNames.add(name);
      tokens.add(`header:${name.slice(0, MAX_WORD)}`);
    }
    switch (name) {
      case 'received':
        if (received++ < MAX_RECEIVED) receivedTokens(header, tokens);
        break;
      case 'to':
      case 'cc':
        for (const part of header.value.split(',')) {
          if (recipients++ >= MAX_RECIPIENTS) break;
          const address = findAddress(part);
          if (address) tokens.add(`${name}:domain:${address[2]!.toLowerCase()}`);
        }
        break;
      case 'reply-to':
      case 'return-path':
      case 'sender': {
        const address = findAddress(header.value);
        tokens.add(`${name}:domain:${address ? address[2]!.toLowerCase() : 'none'}`);
        break;
      }
      case 'message-id': {
        hasMessageId = true;
        const address = findAddress(header.value);
        tokens.add(`message-id:@${address ? address[2]!.toLowerCase() : 'invalid'}`);
        break;
      }
      case 'content-type': {
        const [type = '', ...params] = header.value.toLowerCase().split(';');
        tokens.add(`content-type:${type.trim().slice(0, MAX_WORD)}`);
        for (const param of params) {
          const charset = /^\s*charset\s*=\s*"?([^"\s]+)/.exec(param);
          if (charset) tokens.add(`charset:${charset[1]!.slice(0, MAX_WORD)}`);
        }
        break;
      }
      case 'content-transfer-encoding':
        tokens.add(`content-transfer-encoding:${header.value.trim().toLowerCase().slice(0, MAX_WORD)}`);
        break;
      case 'x-mailer':
      case 'user-agent':
        // Versions change often and say little; the program says a lot (bulk mailers).
        tokens.add(`x-mailer:${header.value.trim().toLowerCase().replace(/\d+/g, '#').slice(0, 60)}`);
        break;
    }
  }
  tokens.add(`received:count:${Math.min(received, 10)}`);
  if (!hasMessageId) tokens.add('message-id:none');
  fromTokens(content.from, tokens);
  for (const word of content.subject.toLowerCase().match(SUBJECT_WORD) ?? []) {
    tokens.add(word.length > MAX_WORD ? `subject:skip:${word[0]} ${lengthBucket(word)}` : `subject:${word}`);
  }
  // Runs of punctuation in a subject ("!!!", "$$$") are a classic spam sign.
  for (const run of content.subject.match(/[!?$%*]{2,}/g) ?? []) tokens.add(`subject:punct:${run.slice(0, 5)}`);
}

function fromTokens(from: string, tokens: TokenSet): void {
  const address = findAddress(from);
  if (!address) {
    tokens.add('from:invalid');
    return;
  }
  tokens.add(`from:addr:${address[1]!.toLowerCase().slice(0, MAX_WORD)}@${address[2]!.toLowerCase()}`);
  tokens.add(`from:domain:${address[2]!.toLowerCase()}`);
  const name = from.slice(0, address.index).replace(/["'<]/g, ' ').trim().toLowerCase();
  if (name === '') tokens.add('from:no-name');
  for (const word of name.split(/\s+/).slice(0, 5)) if (word) tokens.add(`from:name:${word.slice(0, MAX_WORD)}`);
}

/** Host names and the networks (/16, /24) of IPs a Received header names. */
function receivedTokens(header: HeaderField, tokens: TokenSet): void {
  const value = header.value.slice(0, 1000).toLowerCase();
  for (const match of value.matchAll(HOSTNAME)) tokens.add(`received:${match[0]}`);
  for (const match of value.matchAll(IPV4)) {
    tokens.add(`received:ip:${match[1]}.${match[2]}`);
    tokens.add(`received:ip:${match[1]}.${match[2]}.${match[3]}`);
  }
}

/**
 * Each URL host (content.ts parsed the URLs: lower case, IPv6 in brackets), and each
 * parent domain of it down to the registrable domain (SpamAssassin's "D" tokens).
 */
function urlTokens(hosts: readonly string[], tokens: TokenSet): void {
  for (const host of hosts) {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('[')) {
      tokens.add('url:ip');
      tokens.add(`url:${host}`);
      continue;
    }
    const domain = getDomain(host) ?? host;
    tokens.add(`url:${host}`);
    let rest = host;
    while (rest.length > domain.length) {
      const dot = rest.indexOf('.');
      if (dot < 0) break;
      rest = rest.slice(dot + 1);
      tokens.add(`url:${rest}`);
    }
  }
}

function attachmentTokens(content: MessageContent, tokens: TokenSet): void {
  for (const attachment of content.attachments) {
    tokens.add(`attach:type:${attachment.mimeType.toLowerCase().slice(0, MAX_WORD)}`);
    const extension = /\.([a-z0-9]{1,8})$/i.exec(attachment.filename);
    if (extension) tokens.add(`attach:ext:${extension[1]!.toLowerCase()}`);
  }
}

/**
 * Whether the message has HTML at all. Tokens for each tag used were tried and left
 * out: they come in correlated herds (every newsletter has table, font, img, a...)
 * that outvote the words, and on the SpamAssassin corpus they tripled false positives
 * on hard ham for one point of recall.
 */
function htmlTokens(html: string, tokens: TokenSet): void {
  if (html !== '') tokens.add('html:present');
}

function bodyTokens(text: string, tokens: TokenSet): void {
  for (const raw of text.toLowerCase().split(WORD_SEPARATORS)) {
    if (tokens.full) return;
    if (raw.length < MIN_WORD) continue;
    // URLs are counted by host (urlTokens); their paths are mostly unique noise.
    if (raw.startsWith('http') && raw.includes('://')) continue;
    if (raw.startsWith('www.')) continue;
    const word = trimEdgePunctuation(raw);
    if (word.length < MIN_WORD) continue;
    if (word.length > MAX_WORD) {
      tokens.add(`skip:${word[0]} ${lengthBucket(word)}`);
      continue;
    }
    tokens.add(word);
    const at = word.indexOf('@');
    if (at > 0) {
      const address = findAddress(word);
      if (address) tokens.add(`email:${address[2]}`);
    }
  }
}

/**
 * The word without punctuation at its edges. A loop, not a regex: `/[-.]+$/` is tried
 * at every position of a run of dots and scans to its end each time, so one "word" of
 * 100 000 dots between two letters took seconds of CPU per message.
 */
function trimEdgePunctuation(word: string): string {
  let start = 0;
  let end = word.length;
  while (start < end && LEADING_PUNCTUATION.has(word[start]!)) start++;
  while (end > start && TRAILING_PUNCTUATION.has(word[end - 1]!)) end--;
  return word.slice(start, end);
}

/** Long words are told apart only by first character and length in tens, as SpamBayes does. */
function lengthBucket(word: string): number {
  return Math.floor(word.length / 10) * 10;
}
