/**
 * The X-Spam-* headers, in SpamAssassin's formats so that existing Sieve, procmail
 * and MUA filters keep working:
 *
 *   X-Spam-Flag: YES
 *   X-Spam-Score: 7.3
 *   X-Spam-Level: *******
 *   X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99,BAYES_999,
 *   	RCVD_IN_ZEN_EXAMPLE
 *   X-Spam-Report: Content analysis details: (7.3 points, 5.0 required)
 *   	*  3.5 BAYES_99 Bayes spam probability is 99 to 100% [score: 0.9990]
 *
 * Values are built and folded here; descriptions (from configuration and DNS) are
 * reduced to one line of printable ASCII by header-text.ts, test names to A-Z, 0-9, _.
 */
import { headerText } from './header-text.js';
import { formatScore, type SpamTest } from './score.js';

export interface HeaderChoice {
  status: boolean;
  score: boolean;
  flag: boolean;
  level: boolean;
  report: boolean;
}

/** A header ready for Message.prependRawHeader: its name and its already folded value. */
export interface SpamHeader {
  name: string;
  value: string;
}

const FOLD = '\r\n\t';
const LINE = 76;
const MAX_REPORT_LINES = 100;

/** The headers for a scanned message, top first. */
export function spamHeaders(
  result: { score: number; tests: readonly SpamTest[]; flagged: boolean },
  tag: number,
  choice: HeaderChoice,
): SpamHeader[] {
  const headers: SpamHeader[] = [];
  const score = formatScore(result.score);
  const required = formatScore(tag);
  if (choice.flag && result.flagged) headers.push({ name: 'X-Spam-Flag', value: 'YES' });
  if (choice.score) headers.push({ name: 'X-Spam-Score', value: score });
  if (choice.level) headers.push({ name: 'X-Spam-Level', value: '*'.repeat(Math.min(50, Math.max(0, Math.floor(result.score)))) });
  if (choice.status) headers.push({ name: 'X-Spam-Status', value: statusValue(result, score, required) });
  if (choice.report) headers.push({ name: 'X-Spam-Report', value: reportValue(result.tests, score, required) });
  return headers;
}

function statusValue(result: { tests: readonly SpamTest[]; flagged: boolean }, score: string, required: string): string {
  const names = [...new Set(result.tests.map((t) => safeName(t.name)))].sort();
  // "X-Spam-Status: " is 15 characters.
  let line = `${result.flagged ? 'Yes' : 'No'}, score=${score} required=${required} tests=`;
  let width = 15 + line.length;
  if (names.length === 0) return `${line}none`;
  let out = '';
  for (const [i, name] of names.entries()) {
    const piece = i < names.length - 1 ? `${name},` : name;
    if (width + piece.length > LINE && line.length > 0) {
      out += line + FOLD;
      line = '';
      width = 8; // a tab
    }
    line += piece;
    width += piece.length;
  }
  return out + line;
}

function reportValue(tests: readonly SpamTest[], score: string, required: string): string {
  const lines = [`Content analysis details: (${score} points, ${required} required)`];
  for (const t of tests.slice(0, MAX_REPORT_LINES)) {
    lines.push(`* ${formatScore(t.score).padStart(4)} ${safeName(t.name)} ${headerText(t.describe, 120)}`.trimEnd());
  }
  if (tests.length > MAX_REPORT_LINES) lines.push(`* (${tests.length - MAX_REPORT_LINES} more)`);
  return lines.join(FOLD);
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60) || 'UNNAMED';
}
