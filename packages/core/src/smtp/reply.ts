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

/** Format a reply as wire bytes: `250-first\r\n250 last\r\n`. CR and LF inside text are removed so a plugin's text cannot inject a second reply. */
export function formatReply(reply: Reply): string {
  const text: unknown = reply.text;
  // Plugins are untyped at run time: a number or an object as text must still give a reply line.
  const lines = typeof text === 'string' ? text.split('\n') : Array.isArray(text) ? text.map(asText) : [asText(text)];
  const prefix = reply.enhanced ? ` ${reply.enhanced} ` : ' ';
  let out = '';
  const last = lines.length - 1;
  for (let i = 0; i <= last; i++) {
    const line = stripLineBreaks(asText(lines[i] ?? ''));
    out += `${reply.code}${i === last ? prefix : prefix.replace(' ', '-')}${line}\r\n`;
  }
  if (last < 0) out = `${reply.code}${prefix}\r\n`;
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
