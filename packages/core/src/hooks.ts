import { AsyncSeriesBailHook, AsyncSeriesHook } from 'tapable';
import type { Recipient, Session, Transaction, TransactionWithMessage } from './session.js';
import { isVerdict, tempfail, type Verdict } from './verdict.js';

/** Extra tap options: a per-tap timeout overriding the gateway's `pluginTimeout`. */
export interface TapExtras {
  timeout?: number;
}

/** Named stages for taps that must run early or late (tapable `stage`); the YAML order decides within a stage. */
export const HookStage = Object.freeze({ EARLY: -100, NORMAL: 0, LATE: 100 });

export interface HeloInfo {
  verb: 'HELO' | 'EHLO';
  name: string;
  /** ESMTP extension lines the server will advertise; a helo tap may push more (e.g. 'XCLIENT ADDR'). */
  extensions: string[];
}

export interface Credentials {
  mechanism: 'PLAIN' | 'LOGIN';
  username: string;
  password: string;
  /** Authorization identity from AUTH PLAIN, if the client sent one. */
  authzid: string | undefined;
}

/**
 * What every tap function gets after the hook's own arguments:
 * `tap('rcpt', async (session, tx, rcpt, { signal }) => …)`. An object rather than a
 * bare signal, so that more can be added later without changing any tap's signature.
 */
export interface TapContext {
  /**
   * Aborted when the work of this tap call is no longer wanted:
   *
   * - its timeout fired (the core has gone on without it: a 4xx for a decision); the
   *   reason is an Error named `TimeoutError`, `timed out after 5000 ms`;
   * - at `connect`, `helo`, `auth`, `mail`, `rcpt` and `claim` (the steps whose only
   *   product is the answer to the client), the client's connection is gone; the
   *   reason is an Error named `AbortError`, `session ended`. A tap of these hooks that
   *   starts after that gets a signal already aborted. `data` and `queue` taps are not
   *   aborted when the client leaves (a message received whole is finished, as the
   *   design says), nor are `reset`, `quit` and `disconnect`, which run to clean up.
   *
   * A tap that finishes in time never sees an abort. The AbortController is created on
   * the first read of `signal`: a tap that never reads it costs nothing.
   */
  readonly signal: AbortSignal;
}

type Decision = Verdict | undefined | void;
type TapOptionsOf<H extends { tapPromise(options: never, fn: never): void }> = Parameters<H['tapPromise']>[0];
/**
 * tapable's hook with `tap`/`tapPromise` typed to pass a TapContext after the hook's
 * arguments (a tap may declare fewer parameters, so `(session, tx) => …` stays valid).
 *
 * `CallArgs` are what the core calls the hook with, when taps are promised more
 * (`data` and `queue` taps get a TransactionWithMessage; the engine, which has just
 * set `tx.message`, calls them with the Transaction). `promise` is declared twice: the
 * first signature is the one calls match, and the last is the one a type such as
 * `TapFn` infers the taps' arguments from (TypeScript infers from the last overload).
 */
type WithTapContext<H extends { tapPromise(options: never, fn: never): void }, Args extends unknown[], R, CallArgs extends unknown[] = Args> = Omit<
  H,
  'tap' | 'tapPromise' | 'promise'
> & {
  tap(options: TapOptionsOf<H>, fn: (...args: [...Args, TapContext]) => R): void;
  tapPromise(options: TapOptionsOf<H>, fn: (...args: [...Args, TapContext]) => Promise<R>): void;
  promise(...args: CallArgs): Promise<R>;
  promise(...args: Args): Promise<R>;
};
type DecisionHook<Args extends unknown[], CallArgs extends unknown[] = Args> = WithTapContext<AsyncSeriesBailHook<Args, Decision, TapExtras>, Args, Decision, CallArgs>;
type EventHook<Args extends unknown[]> = WithTapContext<AsyncSeriesHook<Args, TapExtras>, Args, void>;

/**
 * Every hook of a gateway, declared once and frozen (like webpack's Compiler).
 * Decision hooks are bail hooks: the first tap that returns a Verdict ends the
 * stage; returning nothing passes the decision on.
 */
export interface GatewayHooks {
  /** After accept, before the greeting: reject (554), tempfail (421) or pass. */
  readonly connect: DecisionHook<[Session]>;
  /** HELO/EHLO: reject the name, or add capabilities to `info.extensions`. */
  readonly helo: DecisionHook<[Session, HeloInfo]>;
  /** Decoded AUTH credentials: `accept()` authenticates; no verdict means invalid credentials (535). */
  readonly auth: DecisionHook<[Session, Credentials]>;
  /** MAIL FROM, with the parsed sender and ESMTP params on the transaction. */
  readonly mail: DecisionHook<[Session, Transaction]>;
  /** Each RCPT TO: the policy decision (accept, reject 550, tempfail 450, or nothing). */
  readonly rcpt: DecisionHook<[Session, Transaction, Recipient]>;
  /**
   * After `rcpt` allowed a recipient: the storage plugin that will deliver it returns
   * `accept()` to claim it (first claim wins), or a reject/tempfail (unknown mailbox,
   * over quota). A recipient nobody claims gets the default policy's answer.
   */
  readonly claim: DecisionHook<[Session, Transaction, Recipient]>;
  /** The whole body is spooled: score, add headers, reject (550/554) or tempfail (451). */
  readonly data: DecisionHook<[Session, TransactionWithMessage], [Session, Transaction]>;
  /** After `data` passed: make the message durable. Every tap runs; any error or verdict other than accept fails the message with 451/554. */
  readonly queue: DecisionHook<[Session, TransactionWithMessage], [Session, Transaction]>;
  /**
   * The end of every transaction (after the end-of-data reply, RSET, HELO/EHLO, STARTTLS,
   * QUIT, disconnect, or a refused MAIL): drop per-transaction state. `tx.outcome` says
   * how it ended and whether the message was queued; undo `queue` work when it was not.
   */
  readonly reset: EventHook<[Session, Transaction]>;
  /** The client sent QUIT. */
  readonly quit: EventHook<[Session]>;
  /** The connection closed, for any reason. */
  readonly disconnect: EventHook<[Session]>;
}

export type HookName = keyof GatewayHooks;
export const DECISION_HOOKS = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'claim', 'data', 'queue'] as const;
export const EVENT_HOOKS = ['reset', 'quit', 'disconnect'] as const;

/** Record of one tap call, handed to the gateway for the audit trail, logs and timings. */
export interface TapOutcome {
  hook: HookName;
  plugin: string;
  ms: number;
  verdict: Verdict | undefined;
  error?: unknown;
  timedOut?: boolean;
  /** The tap failed because its signal was aborted when the client's connection went away (not a plugin fault). */
  aborted?: boolean;
}

export interface HookRuntime {
  /** Default per-tap timeout in ms. */
  timeout: number;
  /** Called after every tap call. */
  record(outcome: TapOutcome, args: readonly unknown[]): void;
  /** Throws if taps may no longer be added (the gateway is listening). */
  assertOpen(hook: HookName, plugin: string): void;
}

export function createHooks(runtime: HookRuntime): GatewayHooks {
  const hooks = {
    connect: new AsyncSeriesBailHook<[Session], Decision, TapExtras>(['session']),
    helo: new AsyncSeriesBailHook<[Session, HeloInfo], Decision, TapExtras>(['session', 'info']),
    auth: new AsyncSeriesBailHook<[Session, Credentials], Decision, TapExtras>(['session', 'credentials']),
    mail: new AsyncSeriesBailHook<[Session, Transaction], Decision, TapExtras>(['session', 'transaction']),
    rcpt: new AsyncSeriesBailHook<[Session, Transaction, Recipient], Decision, TapExtras>(['session', 'transaction', 'recipient']),
    claim: new AsyncSeriesBailHook<[Session, Transaction, Recipient], Decision, TapExtras>(['session', 'transaction', 'recipient']),
    data: new AsyncSeriesBailHook<[Session, Transaction], Decision, TapExtras>(['session', 'transaction']),
    queue: new AsyncSeriesBailHook<[Session, Transaction], Decision, TapExtras>(['session', 'transaction']),
    reset: new AsyncSeriesHook<[Session, Transaction], TapExtras>(['session', 'transaction']),
    quit: new AsyncSeriesHook<[Session], TapExtras>(['session']),
    disconnect: new AsyncSeriesHook<[Session], TapExtras>(['session']),
  } satisfies { [K in HookName]: Pick<GatewayHooks[K], 'promise'> };
  for (const name of DECISION_HOOKS) {
    (hooks[name] as AsyncSeriesBailHook<unknown[], Decision, TapExtras>).intercept({ register: (tap) => wrapTap(name, tap, runtime, true) });
  }
  for (const name of EVENT_HOOKS) {
    (hooks[name] as AsyncSeriesHook<unknown[], TapExtras>).intercept({ register: (tap) => wrapTap(name, tap, runtime, false) });
  }
  // tapable's types do not know the TapContext that wrapTap passes after the hook's arguments.
  return Object.freeze(hooks) as unknown as GatewayHooks;
}

type FullTap = { name: string; type: 'sync' | 'async' | 'promise'; fn: Function; stage?: number; before?: string } & TapExtras;

/** Hooks whose taps only decide what to answer the client: once the connection is gone, their work is moot. */
const ENDS_WITH_SESSION: ReadonlySet<HookName> = new Set<HookName>(['connect', 'helo', 'auth', 'mail', 'rcpt', 'claim']);

/**
 * Per session, the AbortControllers of its running taps of ENDS_WITH_SESSION hooks whose
 * signal was read. Weak, and only written to when a tap reads its signal: a WeakMap write
 * for every session costs more than all its tap calls' contexts together.
 */
const sessionTaps = new WeakMap<object, Set<AbortController>>();

/**
 * The client's connection is gone: abort the signals of the session's running taps of
 * `connect` … `claim`. Those that start or first read their signal later see the
 * session `closed` and get a signal already aborted. Called by the engine.
 */
export function abortSessionTaps(session: object): void {
  const running = sessionTaps.get(session);
  if (running === undefined) return;
  sessionTaps.delete(session);
  const reason = abortError('session ended');
  for (const controller of running) controller.abort(reason);
}

/** SmtpSession's `closed`: the connection is gone (or we are closing it); nothing more will reach the client. */
function sessionClosed(session: object): boolean {
  return (session as { readonly closed?: unknown }).closed === true;
}

function abortError(message: string): Error {
  const error = new Error(message);
  error.name = 'AbortError';
  return error;
}

function timeoutError(ms: number): Error {
  const error = new Error(`timed out after ${ms} ms`);
  error.name = 'TimeoutError';
  return error;
}

/**
 * The TapContext of one tap call. Lazy: nothing but this small object exists until the
 * tap reads `signal`; the timer and the session's end abort a controller only if one
 * was created, and a first read after either gets a signal that is already aborted.
 */
class CallContext implements TapContext {
  private controller: AbortController | undefined = undefined;
  /** The call is over (answered, failed or timed out): no longer tracked with its session. */
  private over = false;
  /** Why the call was abandoned (its timeout), once it was. */
  private reason: Error | undefined = undefined;

  /** @param session the session whose end aborts this call; undefined for hooks that finish regardless. */
  constructor(private readonly session: object | undefined) {}

  get signal(): AbortSignal {
    let controller = this.controller;
    if (controller === undefined) {
      controller = this.controller = new AbortController();
      if (this.reason !== undefined) controller.abort(this.reason);
      else if (!this.over && this.session !== undefined) track(this.session, controller);
    }
    return controller.signal;
  }

  /** The tap's answer is in, or it was given up on: stop tracking it with its session. */
  end(): void {
    this.over = true;
    const controller = this.controller;
    if (controller !== undefined && this.session !== undefined) untrack(this.session, controller);
  }

  /** The tap was given up on (timeout): abort its signal, now or when it is first read. */
  abort(reason: Error): void {
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /** The tap failed with `error` because its session ended and it gave up (not a fault of the plugin). */
  abortedBySession(error: unknown): boolean {
    const signal = this.controller?.signal;
    if (signal === undefined || !signal.aborted || this.reason !== undefined) return false;
    if (error === signal.reason) return true;
    try {
      return error instanceof Error && error.name === 'AbortError';
    } catch {
      return false;
    }
  }
}

function track(session: object, controller: AbortController): void {
  if (sessionClosed(session)) {
    controller.abort(abortError('session ended'));
    return;
  }
  const running = sessionTaps.get(session);
  if (running === undefined) sessionTaps.set(session, new Set([controller]));
  else running.add(controller);
}

function untrack(session: object, controller: AbortController): void {
  sessionTaps.get(session)?.delete(controller);
}

/**
 * The one interceptor every tap goes through: a timeout, errors and timeouts turned
 * into a temporary failure for that step (never a crash, never a silent accept),
 * a check that the tap returned a Verdict or nothing, timing for the audit trail, and
 * the TapContext passed after the hook's arguments (its signal aborted on timeout).
 */
function wrapTap(hook: HookName, tap: FullTap, runtime: HookRuntime, decides: boolean): FullTap {
  runtime.assertOpen(hook, tap.name);
  if (tap.type === 'async') {
    throw new TypeError(`plugin "${tap.name}": hook "${hook}" was tapped with tapAsync; Mailgate is promise-only, use tap() or tapPromise()`);
  }
  const fn = tap.fn;
  const plugin = tap.name;
  const timeout = tap.timeout ?? runtime.timeout;
  const endsWithSession = ENDS_WITH_SESSION.has(hook);
  const failure = (why: string): Verdict | undefined => (decides ? tempfail(undefined, { reason: `${plugin}: ${why}` }) : undefined);

  const finish = (args: unknown[], start: number, value: unknown): Decision => {
    const ms = performance.now() - start;
    if (value === undefined || !decides) {
      runtime.record({ hook, plugin, ms, verdict: undefined }, args);
      return undefined;
    }
    if (!isVerdict(value)) {
      const error = new TypeError(`plugin "${plugin}" returned ${describe(value)} from hook "${hook}"; return a verdict (accept/reject/tempfail/disconnect) or nothing`);
      const verdict = failure('returned an invalid value');
      runtime.record({ hook, plugin, ms, verdict, error }, args);
      return verdict;
    }
    // At `queue` every tap must run: an accept from one storage plugin is success, not the end of the stage.
    const verdict = hook === 'queue' && value.kind === 'accept' ? undefined : value;
    runtime.record({ hook, plugin, ms, verdict: value }, args);
    return verdict;
  };
  const fail = (args: unknown[], start: number, error: unknown, how: 'error' | 'timeout' | 'aborted'): Decision => {
    const timedOut = how === 'timeout';
    const verdict = failure(timedOut ? errorMessage(error) : how === 'aborted' ? 'aborted: the connection is gone' : `error: ${errorMessage(error)}`);
    runtime.record({ hook, plugin, ms: performance.now() - start, verdict, error, timedOut, ...(how === 'aborted' ? { aborted: true } : {}) }, args);
    return verdict;
  };
  const failed = (args: unknown[], start: number, error: unknown, context: CallContext): Decision =>
    fail(args, start, error, context.abortedBySession(error) ? 'aborted' : 'error');

  const guard = (outcome: () => Decision): Decision => {
    try {
      return outcome();
    } catch {
      return failure('returned or threw a value that cannot be recorded');
    }
  };

  const wrapped = (...args: unknown[]): Promise<Decision> => {
    const start = performance.now();
    const context = new CallContext(endsWithSession && typeof args[0] === 'object' && args[0] !== null ? args[0] : undefined);
    let result: unknown;
    try {
      result = callTap(fn, args, context);
    } catch (error) {
      context.end();
      return Promise.resolve(guard(() => failed(args, start, error, context)));
    }
    if (!isThenable(result)) {
      context.end();
      return Promise.resolve(guard(() => finish(args, start, result)));
    }
    return new Promise<Decision>((resolve) => {
      // Only the first outcome counts: an answer arriving after the timeout must not be
      // recorded (audit trail, stats, claimedBy) as if it had decided anything.
      let settled = false;
      const settle = (outcome: () => Decision): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        context.end();
        // Recording an outcome formats what the plugin gave us; whatever that is, this
        // promise must resolve, or the session hangs and Node exits on the rejection.
        let decision: Decision;
        try {
          decision = outcome();
        } catch {
          decision = failure('returned or threw a value that cannot be recorded');
        }
        resolve(decision);
      };
      const timer = setTimeout(() => {
        const reason = timeoutError(timeout);
        settle(() => fail(args, start, reason, 'timeout'));
        // After the 4xx is decided: what the tap does on abort can no longer change it.
        context.abort(reason);
      }, timeout);
      try {
        (result as PromiseLike<unknown>).then(
          (value) => settle(() => finish(args, start, value)),
          (error: unknown) => settle(() => failed(args, start, error, context)),
        );
      } catch (error) {
        settle(() => failed(args, start, error, context));
      }
    });
  };
  return { ...tap, type: 'promise', fn: wrapped };
}

/** `fn(...args, context)` without the spread, which is measurably slower on a path every tap call takes. */
function callTap(fn: Function, args: unknown[], context: TapContext): unknown {
  switch (args.length) {
    case 1:
      return fn(args[0], context);
    case 2:
      return fn(args[0], args[1], context);
    case 3:
      return fn(args[0], args[1], args[2], context);
    default:
      return fn(...args, context);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  try {
    return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return false; // a getter on `then` that throws: not a promise we can use
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object that is not a verdict';
  return `${typeof value} ${safeString(value)}`;
}

/** A message for any thrown value; never throws itself (plugins throw odd things). */
export function errorMessage(error: unknown): string {
  try {
    if (error instanceof Error) return String(error.message);
  } catch {
    // fall through
  }
  return safeString(error);
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
