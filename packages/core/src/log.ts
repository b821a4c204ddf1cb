/**
 * Structured logging: one JSON object per line on stdout (for log shippers), or a
 * human-readable line per event in `pretty` mode. Deliberately tiny: the hot path
 * checks `enabled(level)` before building any fields.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: 100 };

export interface Logger {
  readonly level: LogLevel;
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'json' | 'pretty';
  /** Where lines go; default process.stdout. */
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  return new LineLogger(options.level ?? 'info', options.format ?? 'json', write, {});
}

class LineLogger implements Logger {
  private readonly threshold: number;

  constructor(
    readonly level: LogLevel,
    private readonly format: 'json' | 'pretty',
    private readonly write: (line: string) => void,
    private readonly bound: LogFields,
  ) {
    this.threshold = LEVELS[level];
  }

  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return LEVELS[level] >= this.threshold;
  }
  trace(msg: string, fields?: LogFields): void {
    if (this.threshold <= 10) this.emit('trace', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    if (this.threshold <= 20) this.emit('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    if (this.threshold <= 30) this.emit('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    if (this.threshold <= 40) this.emit('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    if (this.threshold <= 50) this.emit('error', msg, fields);
  }
  child(fields: LogFields): Logger {
    return new LineLogger(this.level, this.format, this.write, { ...this.bound, ...fields });
  }

  private emit(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    const time = new Date().toISOString();
    const all = fields ? { ...this.bound, ...fields } : this.bound;
    if (this.format === 'json') {
      this.write(`${stringify({ time, level, msg, ...all })}\n`);
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(all)) {
      if (v === undefined) continue;
      // Client-supplied text (HELO names, addresses) must not reach a terminal raw:
      // anything with spaces, quotes or control characters is shown JSON-escaped.
      line += ` ${k}=${typeof v === 'string' ? (/[\s"=\p{Cc}\p{Cf}\u2028\u2029]/u.test(v) ? stringify(v) : v) : stringify(v)}`;
    }
    this.write(`${line}\n`);
  }
}

/**
 * JSON that never throws (cycles, throwing getters, BigInt) and escapes, beyond what
 * JSON.stringify escapes (C0 controls), every character a terminal or a log reader may
 * act on: DEL and the C1 controls (U+009B is an 8-bit CSI), format characters such as
 * bidi overrides (U+202E), and U+2028/U+2029. `journalctl -f` and `tail -f` show lines
 * raw, and client text (addresses, AUTH user names) ends up in them.
 */
const UNSAFE_FOR_TERMINALS = /[\u007f-\u009f\p{Cf}\u2028\u2029]/u;
const UNSAFE_FOR_TERMINALS_ALL = /[\u007f-\u009f\p{Cf}\u2028\u2029]/gu;

function stringify(value: unknown): string {
  let text: string;
  try {
    const seen = new WeakSet<object>();
    text = JSON.stringify(value, (_key, v: unknown) => {
      const out = replacer(v);
      if (typeof out === 'object' && out !== null) {
        if (seen.has(out)) return '[circular]';
        seen.add(out);
      }
      return out;
    });
  } catch {
    text = JSON.stringify('[unserializable log fields]');
  }
  return UNSAFE_FOR_TERMINALS.test(text) ? text.replace(UNSAFE_FOR_TERMINALS_ALL, (c) => c.split('').map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')) : text;
}

/** The first `lines` lines of an error's stack, for a log field (log lines keep only message and code). */
export function stackOf(error: unknown, lines = 8): string | undefined {
  return error instanceof Error && typeof error.stack === 'string' ? error.stack.split('\n').slice(0, lines).join('\n') : undefined;
}

/** Errors are serialised with their message and code, not as `{}`. */
function replacer(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    const message = String(value.message);
    return code ? { message, code: String(code) } : { message };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A logger that drops everything (embedding and tests). */
export const silentLogger: Logger = createLogger({ level: 'silent', write: () => undefined });
