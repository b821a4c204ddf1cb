/**
 * An SMTP reply: a three-digit code, an RFC 3463 enhanced status code and text.
 * Every reply the server sends goes through `formatReply`, so ENHANCEDSTATUSCODES
 * (RFC 2034) is honoured everywhere and multi-line replies are well formed.
 */
export interface Reply {
  code: number;
  /** RFC 3463 enhanced status code such as "2.1.0"; omitted only for 220/221 greetings and 354. */
  enhanced?: string;
  /** One or more lines of text. */
  text: string | readonly string[];
}

/** RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets, its CRLF included. */
const MAX_REPLY_LINE = 512;
const ONE_PRINTABLE_LINE = /^[\x20-\x7e]*$/;

/**
 * Format a reply as wire bytes: `250-first\r\n250 last\r\n`. Whatever a plugin put in the
 * text, the reply is well formed: CR and LF inside text are removed (no second reply
 * injected), anything but printable US-ASCII becomes `?` (replies are ASCII unless the
 * client asked for SMTPUTF8, and a client's own bytes echoed back must not be control
 * sequences), and a line longer than 512 octets is continued on further lines.
 */
export function formatReply(reply: Reply): string {
  const text: unknown = reply.text;
  const prefix = reply.enhanced ? ` ${reply.enhanced} ` : ' ';
  /** Characters of text a line can hold, beside its code, prefix and CRLF. */
  const room = MAX_REPLY_LINE - 2 - String(reply.code).length - prefix.length;
  // The common case, every reply the engine makes itself: one printable line that fits.
  if (typeof text === 'string' && text.length <= room && ONE_PRINTABLE_LINE.test(text)) return `${reply.code}${prefix}${text}\r\n`;
  // Plugins are untyped at run time: a number or an object as text must still give a reply line.
  const given = typeof text === 'string' ? text.split('\n') : Array.isArray(text) ? text.map(asText) : [asText(text)];
  const lines = given.flatMap((l) => wrap(printable(stripLineBreaks(asText(l ?? ''))), room));
  let out = '';
  const last = lines.length - 1;
  for (let i = 0; i <= last; i++) {
    out += `${reply.code}${i === last ? prefix : prefix.replace(' ', '-')}${lines[i]}\r\n`;
  }
  if (last < 0) out = `${reply.code}${prefix}\r\n`;
  return out;
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x20-\x7e]/.test(text) ? text.replace(/\t/g, ' ').replace(/[^\x20-\x7e]/gu, '?') : text;
}

/** Lines of at most `room` characters, broken at a space where there is one. */
function wrap(line: string, room: number): string[] {
  if (line.length <= room) return [line];
  const out: string[] = [];
  let rest = line;
  while (rest.length > room) {
    const space = rest.lastIndexOf(' ', room);
    const cut = space > 0 ? space : room;
    out.push(rest.slice(0, cut));
    rest = rest.slice(space > 0 ? cut + 1 : cut);
  }
  out.push(rest);
  return out;
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return String(value);
  } catch {
    return '';
  }
}

function stripLineBreaks(text: string): string {
  return /[\r\n]/.test(text) ? text.replace(/[\r\n]+/g, ' ') : text;
}
