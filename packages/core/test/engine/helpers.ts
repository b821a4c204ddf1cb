/**
 * Shared helpers for the protocol-engine tests (not a test file itself).
 *
 * Every test builds its own gateway on a private temporary spool directory and
 * drives a session on bytes through `testSession()`; no sockets.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import {
  accept,
  createGateway,
  reject,
  tempfail,
  createLogger,
  definePlugin,
  silentLogger,
  type AuditEntry,
  type Gateway,
  type GatewayConfigInput,
  type Header,
  type Logger,
  type PluginContext,
  type PluginDefinition,
} from '../../src/index.js';
import { discardPlugin } from '../../src/plugins/discard.js';
import { testSession, type TestSession } from '../../src/testing/index.js';

export { discardPlugin };

// --- temporary spool directories ----------------------------------------------------------

const dirs: string[] = [];

/** A fresh temporary directory, removed when the test file is done. */
export function tmpDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-engine-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// --- gateways -----------------------------------------------------------------------------

export type GatewayInput = Omit<GatewayConfigInput, 'hostname' | 'spool'> & { spool?: { memoryThreshold?: number | string } };

/** A gateway named mx.test on a private spool directory, silent unless a logger is given. */
export function makeGateway(config: GatewayInput = {}, logger: Logger = silentLogger): Gateway {
  const spoolDir = join(tmpDir(), 'spool');
  return createGateway({ hostname: 'mx.test', ...config, spool: { dir: spoolDir, ...config.spool } }, { logger });
}

/** A logger that keeps every line (JSON) it is given, for asserting on engine errors. */
export function recordingLogger(level: 'error' | 'warn' | 'info' | 'debug' = 'error'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level, format: 'json', write: (line) => void lines.push(line) }), lines };
}

/** A plugin made of one setup function (the context is the plugin's). */
export function plugin(name: string, setup: (ctx: PluginContext<unknown>) => void | Promise<void>): PluginDefinition {
  return definePlugin({ name, setup: setup as PluginDefinition['setup'] });
}

/** What a store plugin's `queue` tap saw of one message. */
export interface Stored {
  plugin: string;
  txId: string;
  from: string;
  /** Every recipient of the transaction. */
  rcpts: string[];
  /** The recipients this plugin claimed (what it must deliver). */
  claimed: string[];
  /** The whole message as the queue tap read it: prepended headers + body. */
  bytes: Buffer;
  /** The same, read a second time through an independent stream. */
  bytesAgain: Buffer;
  spoolPath: string | undefined;
  spoolFileExisted: boolean;
  headers: readonly Header[];
  audit: AuditEntry[];
}

export interface StoreOptions {
  /** Domains this store claims ('*' = all); they are declared local. */
  domains?: string[] | '*';
  /** Make `queue` fail: throw, or return a verdict. */
  fail?: 'throw' | 'tempfail-verdict' | 'reject-verdict';
  /** Record into this list (several stores can share one, in queue order). */
  into?: Stored[];
}

/**
 * A storage plugin for tests: claims the recipients of its domains and, at `queue`,
 * reads the whole message twice (two independent streams) and records it.
 */
export function storePlugin(name = 'store', options: StoreOptions = {}): { plugin: PluginDefinition; stored: Stored[] } {
  const stored: Stored[] = options.into ?? [];
  const domains = options.domains ?? '*';
  const def = plugin(name, ({ tap, gateway, name: instance }) => {
    if (domains !== '*') for (const d of domains) gateway.addLocalDomain(d);
    tap('claim', (_s, _tx, rcpt) => (domains === '*' || domains.includes(rcpt.address.domain.toLowerCase()) ? accept() : undefined));
    tap('queue', async (_s, tx) => {
      const message = tx.message!;
      const bytes = await readAll(message.stream());
      const bytesAgain = await readAll(message.stream());
      const spoolPath = message.spoolPath;
      stored.push({
        plugin: instance,
        txId: tx.id,
        from: tx.senderText,
        rcpts: tx.recipients.map((r) => r.text),
        claimed: tx.claimedBy(instance).map((r) => r.text),
        bytes,
        bytesAgain,
        spoolPath,
        spoolFileExisted: spoolPath !== undefined && existsSync(spoolPath),
        headers: await message.headers(),
        audit: [...tx.audit],
      });
      if (options.fail === 'throw') throw new Error('disk full');
      if (options.fail === 'tempfail-verdict') return tempfail();
      if (options.fail === 'reject-verdict') return reject();
      return accept();
    });
  });
  return { plugin: def, stored };
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

/** A gateway with a store plugin claiming `example.test`; returns both. */
export async function storeGateway(config: GatewayInput = {}, options: StoreOptions = { domains: ['example.test'] }) {
  const gw = makeGateway(config);
  const store = storePlugin('store', options);
  await gw.use(store.plugin);
  return { gw, stored: store.stored };
}

// --- sessions -----------------------------------------------------------------------------

export const GREETING = '220 mx.test ESMTP\r\n';

export const EHLO_REPLY = lines(
  '250-mx.test Hello c.test [127.0.0.1]',
  '250-PIPELINING',
  '250-SIZE 26214400',
  '250-8BITMIME',
  '250-ENHANCEDSTATUSCODES',
  '250-DSN',
  '250-SMTPUTF8',
  '250 CHUNKING',
);

/** CRLF-terminated lines joined: what a well-behaved client (or server) writes. */
export function lines(...ls: string[]): string {
  return ls.map((l) => `${l}\r\n`).join('');
}

/** A session that got its greeting and said EHLO c.test. */
export async function ready(gw: Gateway, peer: Parameters<typeof testSession>[1] = {}): Promise<TestSession> {
  const s = await testSession(gw, peer);
  const ehlo = await s.send('EHLO c.test\r\n');
  if (!ehlo.startsWith('250-mx.test Hello c.test')) throw new Error(`EHLO failed: ${ehlo}`);
  return s;
}

/** MAIL, RCPTs and DATA in one pipelined write; returns the replies. */
export function envelope(from: string, ...to: string[]): string {
  return lines(`MAIL FROM:<${from}>`, ...to.map((t) => `RCPT TO:<${t}>`), 'DATA');
}

export const OK_MAIL = '250 2.1.0 Sender OK\r\n';
export const OK_RCPT = '250 2.1.5 Recipient OK\r\n';
export const GO_AHEAD = '354 End data with <CR><LF>.<CR><LF>\r\n';
export const QUEUED = /^250 2\.0\.0 OK: queued as \S+\r\n$/;

/** The Received header the gateway prepends: everything up to its final CRLF. */
export function splitReceived(message: Buffer): { received: string; rest: Buffer } {
  const text = message.toString('latin1');
  if (!text.startsWith('Received: ')) throw new Error(`message does not start with Received: ${JSON.stringify(text.slice(0, 40))}`);
  // The header ends at the first CRLF not followed by folding white space.
  let i = 0;
  for (;;) {
    const crlf = text.indexOf('\r\n', i);
    if (crlf < 0) throw new Error('unterminated Received header');
    const next = text[crlf + 2];
    if (next !== ' ' && next !== '\t') return { received: text.slice(0, crlf + 2), rest: message.subarray(crlf + 2) };
    i = crlf + 2;
  }
}

// --- reply well-formedness ------------------------------------------------------------------

export interface ParsedReply {
  code: number;
  /** Enhanced status code of the last line, if any. */
  enhanced: string | undefined;
  lines: string[];
}

/**
 * Split server output into replies and check every rule a client relies on; returns
 * the replies or throws with the offending bytes. Rules: CRLF-terminated lines of the
 * form `ddd[ -]text`; a multi-line reply's lines share the code and only its last
 * uses a space; codes 2xx–5xx; every reply except the greetings (220 on connect and
 * STARTTLS), 221, 354, 334 and the HELO/EHLO reply carries an enhanced status code
 * `c.d.d` whose class equals the code's first digit, on every line.
 */
export function checkReplies(output: string, hostname = 'mx.test'): ParsedReply[] {
  const fail = (why: string, at: string): never => {
    throw new Error(`${why}: ${JSON.stringify(at)} in ${JSON.stringify(output.slice(0, 2000))}`);
  };
  if (output === '') return [];
  if (!output.endsWith('\r\n')) fail('output does not end with CRLF', output.slice(-80));
  const raw = output.slice(0, -2).split('\r\n');
  const replies: ParsedReply[] = [];
  let current: string[] = [];
  for (const line of raw) {
    if (/[\r\n]/.test(line)) fail('bare CR or LF inside a reply line', line);
    if (!/^\d{3}([ -].*)?$/.test(line)) fail('malformed reply line', line);
    const code = line.slice(0, 3);
    if (current.length > 0 && current[0]!.slice(0, 3) !== code) fail('multi-line reply changes its code', line);
    current.push(line);
    if (line[3] !== '-') {
      replies.push(checkOne(current, hostname, fail));
      current = [];
    }
  }
  if (current.length > 0) fail('multi-line reply without a last line', current.join('|'));
  return replies;
}

function checkOne(group: string[], hostname: string, fail: (why: string, at: string) => never): ParsedReply {
  const code = Number(group[0]!.slice(0, 3));
  if (code < 200 || code > 599) fail('reply code out of 2xx-5xx', group[0]!);
  const texts = group.map((l) => l.slice(4));
  const heloReply = code === 250 && texts[0]!.startsWith(`${hostname} Hello `);
  const exempt = code === 220 || code === 221 || code === 354 || code === 334 || heloReply;
  let enhanced: string | undefined;
  for (const text of texts) {
    const m = /^(\d)\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(text);
    if (m) {
      if (Number(m[1]) !== Math.floor(code / 100)) fail('enhanced code class differs from reply class', `${code} ${text}`);
      enhanced = `${m[1]}.${m[2]}.${m[3]}`;
    } else if (!exempt) fail('reply without enhanced status code', `${code} ${text}`);
  }
  return { code, enhanced, lines: texts };
}

/** Reply codes, one per (possibly multi-line) reply. */
export function codes(output: string): number[] {
  return checkReplies(output).map((r) => r.code);
}

/** `\r`, `\n`, `\t`, `\\`, `\xNN` escapes, as in the dialogue files. */
export function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[rnt\\0])/g, (_m, e: string) => {
    switch (e[0]) {
      case 'r':
        return '\r';
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case '0':
        return '\0';
      case '\\':
        return '\\';
      default:
        return String.fromCharCode(parseInt(e.slice(1), 16));
    }
  });
}

/** Cut `data` at every position in `cuts` (sorted, deduplicated). */
export function splitAt(data: Buffer, cuts: number[]): Buffer[] {
  const sorted = [...new Set(cuts.map((c) => Math.max(0, Math.min(data.length, c))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(data.subarray(prev, c));
    prev = c;
  }
  out.push(data.subarray(prev));
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
