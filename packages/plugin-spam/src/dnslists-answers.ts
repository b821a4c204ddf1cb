/**
 * What one A answer of a DNS list means. Only 127.0.0.0/8 carries list data (RFC 5782
 * §2.3); everything else says something about the resolver path, not the message:
 * - outside 127/8: a wildcarding ISP resolver or a hijacked path → never a listing;
 * - 127.255.255.0/24: Spamhaus-style error codes (252 typo in the zone, 254 queries via a
 *   public resolver, 255 excessive queries) → not listed, and the admin must hear of it;
 * - 127.0.0.1 / 127.0.0.255 without an explicit filter: URIBL, SURBL and DNSWL answer
 *   these for "your queries are refused"; RFC 5782 §5 says 127.0.0.1 is never listed.
 */
import { ipv4ToNumber, parseReturnCode, type ReturnCodeMatcher } from './dnslists-config.js';

export type AnswerMeaning = 'listed' | 'filtered' | 'list-error' | 'unexpected-answer';

/** The fields of a list that decide what its answers mean. */
export interface AnswerFilter {
  returnCodes?: readonly string[] | undefined;
  bitmask?: number | undefined;
}

const ERROR_NET = ipv4ToNumber('127.255.255.0')!;
const REFUSED_CODES = new Set([ipv4ToNumber('127.0.0.1')!, ipv4ToNumber('127.0.0.255')!]);

// Lists come from the schemas and live as long as the config: compile their filters once.
const compiled = new WeakMap<readonly string[], ReturnCodeMatcher[]>();

function matchersOf(codes: readonly string[]): ReturnCodeMatcher[] {
  let matchers = compiled.get(codes);
  if (!matchers) {
    matchers = codes.map((code) => {
      const m = parseReturnCode(code);
      // the schema refuses these; a hand-built list reaching here is a programming error
      if (typeof m === 'string') throw new TypeError(m);
      return m;
    });
    compiled.set(codes, matchers);
  }
  return matchers;
}

export function classifyAnswer(answer: string, filter: AnswerFilter): AnswerMeaning {
  const address = ipv4ToNumber(answer);
  if (address === undefined || Math.floor(address / 2 ** 24) !== 127) return 'unexpected-answer';
  if (address >= ERROR_NET && address <= ERROR_NET + 255) return 'list-error';
  const codes = filter.returnCodes;
  const mask = filter.bitmask;
  if ((codes && codes.length > 0) || mask !== undefined) {
    if (codes && matchersOf(codes).some((m) => m(address))) return 'listed';
    // `>>> 0` keeps the AND unsigned for masks with the top bit set
    if (mask !== undefined && (address & mask) >>> 0 !== 0) return 'listed';
    return 'filtered';
  }
  return REFUSED_CODES.has(address) ? 'list-error' : 'listed';
}

/** The answers of one query, sorted by meaning. */
export interface ClassifiedAnswers {
  listed: string[];
  errors: string[];
  unexpected: string[];
}

export function classifyAnswers(answers: readonly string[], filter: AnswerFilter): ClassifiedAnswers {
  const out: ClassifiedAnswers = { listed: [], errors: [], unexpected: [] };
  for (const answer of answers) {
    const meaning = classifyAnswer(answer, filter);
    if (meaning === 'listed') out.listed.push(answer);
    else if (meaning === 'list-error') out.errors.push(answer);
    else if (meaning === 'unexpected-answer') out.unexpected.push(answer);
  }
  return out;
}
