import { AsyncSeriesBailHook, AsyncSeriesHook } from 'tapable';
import type { Recipient, Session, Transaction } from './session.js';
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

type Decision = Verdict | undefined | void;
type DecisionHook<Args> = AsyncSeriesBailHook<Args, Decision, TapExtras>;
type EventHook<Args> = AsyncSeriesHook<Args, TapExtras>;

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
  readonly data: DecisionHook<[Session, Transaction]>;
  /** After `data` passed: make the message durable. Every tap runs; any error or verdict other than accept fails the message with 451/554. */
  readonly queue: DecisionHook<[Session, Transaction]>;
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
  } satisfies GatewayHooks;
  for (const name of DECISION_HOOKS) {
    (hooks[name] as DecisionHook<unknown[]>).intercept({ register: (tap) => wrapTap(name, tap, runtime, true) });
  }
  for (const name of EVENT_HOOKS) {
    (hooks[name] as EventHook<unknown[]>).intercept({ register: (tap) => wrapTap(name, tap, runtime, false) });
  }
  return Object.freeze(hooks);
}

type FullTap = { name: string; type: 'sync' | 'async' | 'promise'; fn: Function; stage?: number; before?: string } & TapExtras;

/**
 * The one interceptor every tap goes through: a timeout, errors and timeouts turned
 * into a temporary failure for that step (never a crash, never a silent accept),
 * a check that the tap returned a Verdict or nothing, and timing for the audit trail.
 */
function wrapTap(hook: HookName, tap: FullTap, runtime: HookRuntime, decides: boolean): FullTap {
  runtime.assertOpen(hook, tap.name);
  if (tap.type === 'async') {
    throw new TypeError(`plugin "${tap.name}": hook "${hook}" was tapped with tapAsync; Mailgate is promise-only, use tap() or tapPromise()`);
  }
  const fn = tap.fn;
  const plugin = tap.name;
  const timeout = tap.timeout ?? runtime.timeout;
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
  const fail = (args: unknown[], start: number, error: unknown, timedOut: boolean): Decision => {
    const verdict = failure(timedOut ? `timed out after ${timeout} ms` : `error: ${errorMessage(error)}`);
    runtime.record({ hook, plugin, ms: performance.now() - start, verdict, error, timedOut }, args);
    return verdict;
  };

  const guard = (outcome: () => Decision): Decision => {
    try {
      return outcome();
    } catch {
      return failure('returned or threw a value that cannot be recorded');
    }
  };

  const wrapped = (...args: unknown[]): Promise<Decision> => {
    const start = performance.now();
    let result: unknown;
    try {
      result = fn(...args);
    } catch (error) {
      return Promise.resolve(guard(() => fail(args, start, error, false)));
    }
    if (!isThenable(result)) return Promise.resolve(guard(() => finish(args, start, result)));
    return new Promise<Decision>((resolve) => {
      // Only the first outcome counts: an answer arriving after the timeout must not be
      // recorded (audit trail, stats, claimedBy) as if it had decided anything.
      let settled = false;
      const settle = (outcome: () => Decision): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
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
      const timer = setTimeout(() => settle(() => fail(args, start, new Error(`timed out after ${timeout} ms`), true)), timeout);
      try {
        (result as PromiseLike<unknown>).then(
          (value) => settle(() => finish(args, start, value)),
          (error: unknown) => settle(() => fail(args, start, error, false)),
        );
      } catch (error) {
        settle(() => fail(args, start, error, false));
      }
    });
  };
  return { ...tap, type: 'promise', fn: wrapped };
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
