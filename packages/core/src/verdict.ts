import type { Reply } from './smtp/reply.js';

/**
 * What a decision tap returns. `undefined` means "no opinion, ask the next tap";
 * a Verdict ends the stage. Make verdicts with the helpers below: the core derives
 * the SMTP code and the enhanced status code from one permanent/temporary flag,
 * so the two can never disagree (maddy's bug).
 */
export type VerdictKind = 'accept' | 'reject' | 'tempfail' | 'disconnect';

export interface Verdict {
  readonly kind: VerdictKind;
  /** Explicit SMTP code; must match the kind's class (2xx accept, 5xx reject, 4xx tempfail/disconnect). */
  readonly code?: number;
  /** Explicit enhanced status code, e.g. "5.7.1"; its class is forced to match `code`. */
  readonly enhanced?: string;
  /** Text sent to the client. Keep it generic; put internals in `reason`. */
  readonly message?: string;
  /** Internal reason for the log and the audit trail; never sent to the client. */
  readonly reason?: string;
}

export interface VerdictOptions {
  code?: number;
  enhanced?: string;
  reason?: string;
}

const VERDICT = Symbol.for('mailgate.verdict');

function make(kind: VerdictKind, message: string | undefined, options: VerdictOptions | undefined): Verdict {
  // JavaScript plugins may pass anything (an Error, a number): keep the reply a line of text.
  const text = message === undefined || typeof message === 'string' ? message : messageText(message);
  const verdict: Verdict & { [VERDICT]?: true } = { kind, ...options, ...(text === undefined ? {} : { message: text }) };
  Object.defineProperty(verdict, VERDICT, { value: true });
  return Object.freeze(verdict);
}

function messageText(value: unknown): string | undefined {
  try {
    return value instanceof Error ? String(value.message) : String(value);
  } catch {
    return undefined;
  }
}

/** Accept: ends the stage positively (e.g. accept a recipient, accept credentials). */
export function accept(message?: string, options?: VerdictOptions): Verdict {
  return make('accept', message, options);
}
/** Permanent refusal (5xx). */
export function reject(message?: string, options?: VerdictOptions): Verdict {
  return make('reject', message, options);
}
/** Temporary refusal (4xx): the client should retry later. */
export function tempfail(message?: string, options?: VerdictOptions): Verdict {
  return make('tempfail', message, options);
}
/** Reply 421 and close the connection. */
export function disconnect(message?: string, options?: VerdictOptions): Verdict {
  return make('disconnect', message, options);
}

export function isVerdict(value: unknown): value is Verdict {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[VERDICT] === true;
}

/** The SMTP stages a verdict can be given at. */
export type Stage = 'connect' | 'helo' | 'auth' | 'mail' | 'rcpt' | 'data' | 'queue';

/** Default reply per stage and kind, for verdicts that do not name their own code. */
const DEFAULTS: Record<Stage, Record<Exclude<VerdictKind, 'disconnect'>, Reply>> = {
  connect: {
    accept: { code: 220, text: 'ready' },
    reject: { code: 554, enhanced: '5.7.1', text: 'Connection refused' },
    tempfail: { code: 421, enhanced: '4.3.2', text: 'Service not available, try again later' },
  },
  helo: {
    accept: { code: 250, enhanced: '2.0.0', text: 'OK' },
    reject: { code: 550, enhanced: '5.7.1', text: 'HELO/EHLO name rejected' },
    tempfail: { code: 450, enhanced: '4.7.1', text: 'HELO/EHLO name temporarily rejected' },
  },
  auth: {
    accept: { code: 235, enhanced: '2.7.0', text: 'Authentication successful' },
    reject: { code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' },
    tempfail: { code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' },
  },
  mail: {
    accept: { code: 250, enhanced: '2.1.0', text: 'Sender OK' },
    reject: { code: 550, enhanced: '5.7.1', text: 'Sender rejected' },
    tempfail: { code: 451, enhanced: '4.7.1', text: 'Sender temporarily rejected, try again later' },
  },
  rcpt: {
    accept: { code: 250, enhanced: '2.1.5', text: 'Recipient OK' },
    reject: { code: 550, enhanced: '5.7.1', text: 'Recipient rejected' },
    tempfail: { code: 450, enhanced: '4.7.1', text: 'Recipient temporarily rejected, try again later' },
  },
  data: {
    accept: { code: 250, enhanced: '2.6.0', text: 'Message accepted' },
    reject: { code: 550, enhanced: '5.7.1', text: 'Message rejected' },
    tempfail: { code: 451, enhanced: '4.7.1', text: 'Message temporarily rejected, try again later' },
  },
  queue: {
    accept: { code: 250, enhanced: '2.6.0', text: 'Message queued' },
    reject: { code: 554, enhanced: '5.3.0', text: 'Message could not be stored' },
    tempfail: { code: 451, enhanced: '4.3.0', text: 'Message could not be stored, try again later' },
  },
};

/**
 * Turn a verdict into the reply the client sees. The reply's class always follows
 * the verdict's kind: a `reject` carrying a 4xx code gets the stage's default 5xx
 * code, and the enhanced code's class is forced to match. A plugin that mixes them
 * up must not turn a refusal into a retry storm, or a retry into a bounce.
 */
export function verdictToReply(verdict: Verdict, stage: Stage): Reply {
  const kind = verdict.kind === 'disconnect' ? 'tempfail' : verdict.kind;
  const base = DEFAULTS[stage][kind];
  const wantClass = verdict.kind === 'disconnect' ? 4 : base.code >= 500 ? 5 : base.code >= 400 ? 4 : 2;
  let code = verdict.kind === 'disconnect' ? 421 : base.code;
  if (verdict.code !== undefined && Number.isInteger(verdict.code) && Math.floor(verdict.code / 100) === wantClass && verdict.code < 600) {
    code = verdict.code;
  }
  let enhanced = base.enhanced ?? `${wantClass}.0.0`;
  if (verdict.kind === 'disconnect') enhanced = '4.3.2';
  if (verdict.enhanced && /^[245]\.\d{1,3}\.\d{1,3}$/.test(verdict.enhanced)) {
    enhanced = `${wantClass}${verdict.enhanced.slice(1)}`;
  }
  const text = verdict.message ?? (verdict.kind === 'disconnect' ? 'Closing connection' : base.text);
  return stage === 'connect' && code === 220 ? { code, text } : { code, enhanced, text };
}

export function defaultReply(stage: Stage, kind: Exclude<VerdictKind, 'disconnect'>): Reply {
  return DEFAULTS[stage][kind];
}
