/**
 * Splits one SMTP command line into verb and arguments. Never throws.
 */

export interface CommandLine {
  /** The verb, upper-cased ('' for an empty line). */
  verb: string;
  /** Everything after the first space, trailing white space removed ('' if none). Not trimmed at the start. */
  args: string;
}

/**
 * `MAIL FROM:<a@b> SIZE=1` → `{ verb: 'MAIL', args: 'FROM:<a@b> SIZE=1' }`.
 *
 * The line may still carry its line ending: trailing spaces, tabs, CR and LF are
 * stripped. It splits at the FIRST space only, so `MAIL  FROM:` yields the args
 * ` FROM:` (leading space kept; the address parser refuses it). A Buffer is
 * decoded as UTF-8 (SMTPUTF8); invalid sequences become U+FFFD, which the
 * address parser refuses.
 */
export function parseCommandLine(line: Buffer | string): CommandLine {
  let s: string;
  if (typeof line === 'string') s = line;
  else if (Buffer.isBuffer(line)) s = line.toString('utf8');
  else return { verb: '', args: '' };

  let end = s.length;
  while (end > 0) {
    const c = s.charCodeAt(end - 1);
    if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) end--;
    else break;
  }
  const sp = s.indexOf(' ');
  if (sp < 0 || sp >= end) return { verb: s.slice(0, end).toUpperCase(), args: '' };
  return { verb: s.slice(0, sp).toUpperCase(), args: s.slice(sp + 1, end) };
}
