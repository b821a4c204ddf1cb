/**
 * `mailgate spam train | check | stats -c gateway.yaml`: sa-learn, `spamassassin -t`
 * and `sa-learn --dump magic` for this plugin, run with the plugin's options from the
 * gateway's config (its Bayes file, rules, lists and DNS servers), without starting it.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createLogger, DnsResolver, type PluginCommand, type PluginCommandContext } from '@mailgate/core';
import { BayesStore } from './bayes/index.js';
import { BayesFile } from './bayes-file.js';
import { SpamChecks } from './checks.js';
import { parseContent } from './content.js';
import { corpusMessages, CorpusError } from './corpus.js';
import type { SpamOptions } from './options.js';
import type { SpfResult } from './spf/index.js';
import { readFileHead, readStreamHead } from './read-head.js';
import { decideAction, formatScore, totalScore, type SpamTest } from './score.js';

export const SPAM_USAGE = `usage: mailgate spam COMMAND [ARGS] -c gateway.yaml

  train [--mbox] [--forget] --spam PATH... --ham PATH...
        Learn messages into the Bayes database (the plugin's bayes.file): each PATH is
        a message file or a directory, walked recursively (Maildirs: cur/ and new/;
        hidden folders such as .Junk are skipped). With --mbox, files are mbox files.
        A message learned twice counts once; one learned with the other label moves.
        With --forget, the messages are unlearned instead (no --spam/--ham needed:
        give the paths after --forget).
  check [--ip ADDRESS] [--sender ADDRESS] [--helo NAME] FILE|-
        Score one message as the gateway would and print every check's points (like
        spamassassin -t). Content checks, DKIM and DMARC always run; DNS lists of the
        client and SPF only with --ip (and --sender/--helo), using the config's DNS
        servers (DMARC then also aligns with that SPF result).
  stats
        The Bayes database: messages learned, tokens, and whether it is used yet.

Exit status: 0 ok, 1 runtime error (unreadable path, corrupt database), 2 bad usage.
`;

type Context = PluginCommandContext<SpamOptions>;

class UsageError extends Error {}

function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

export const spamCommand: PluginCommand<SpamOptions> = {
  summary: 'train the spam filter\'s Bayes database, check a message, show Bayes statistics',
  usage: SPAM_USAGE,
  async run(args, context) {
    const [sub, ...rest] = args;
    try {
      switch (sub) {
        case 'train':
          return await train(rest, context);
        case 'check':
          return await check(rest, context);
        case 'stats':
          if (rest.length > 0) throw new UsageError(`stats takes no arguments, got "${rest[0]}"`);
          return await stats(context);
        case undefined:
          throw new UsageError('missing command (train, check or stats)');
        default:
          throw new UsageError(`unknown command "${sub}" (train, check or stats)`);
      }
    } catch (error) {
      if (error instanceof UsageError) {
        write(context.stderr, `mailgate spam: ${error.message}\nRun "mailgate spam --help" for usage.`);
        return 2;
      }
      write(context.stderr, `mailgate spam${sub ? ` ${sub}` : ''}: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
  },
};

/** The Bayes file of the config, or an error saying how to configure one. */
function bayesPath(context: Context): string {
  const bayes = context.options.bayes;
  if (!bayes) {
    throw new Error('no Bayes database configured: add `bayes: { file: ./var/bayes.db }` to the "with:" of @mailgate/plugin-spam in the config');
  }
  return resolve(context.configDir, bayes.file);
}

interface TrainArgs {
  spam: string[];
  ham: string[];
  forget: string[];
  mbox: boolean;
}

/** `--spam a b --ham c --spam=d`: each option takes every following argument up to the next option. */
export function parseTrainArgs(args: readonly string[]): TrainArgs {
  const out: TrainArgs = { spam: [], ham: [], forget: [], mbox: false };
  let target: string[] | undefined;
  for (const arg of args) {
    const eq = /^--(spam|ham|forget)=(.*)$/.exec(arg);
    if (eq) {
      target = out[eq[1] as 'spam' | 'ham' | 'forget'];
      if (eq[2]) target.push(eq[2]);
    } else if (arg === '--spam' || arg === '--ham' || arg === '--forget') target = out[arg.slice(2) as 'spam' | 'ham' | 'forget'];
    else if (arg === '--mbox') out.mbox = true;
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`train: unknown option "${arg}"`);
    else if (!target) throw new UsageError(`train: "${arg}" is not after --spam, --ham or --forget`);
    else target.push(arg);
  }
  if (out.spam.length + out.ham.length + out.forget.length === 0) throw new UsageError('train: give messages with --spam PATH... and/or --ham PATH...');
  return out;
}

async function train(args: readonly string[], context: Context): Promise<number> {
  const parsed = parseTrainArgs(args);
  const path = bayesPath(context);
  const options = context.options;
  const store = await BayesStore.open(path, { minSpam: options.bayes!.minSpam, minHam: options.bayes!.minHam });
  const read = { mbox: parsed.mbox, maxBytes: options.maxScanSize };
  const started = performance.now();
  const counts = { learned: 0, relearned: 0, unchanged: 0, forgotten: 0, unknown: 0 };
  for (const [label, paths] of [
    ['spam', parsed.spam],
    ['ham', parsed.ham],
  ] as const) {
    let n = 0;
    for await (const message of corpusMessages(paths, read)) {
      const content = await parseContent(message.bytes, { maxBytes: options.maxScanSize });
      counts[store.learn(content, label)]++;
      n++;
    }
    if (paths.length > 0 && n === 0) throw new CorpusError(`no messages found in ${paths.join(', ')}${parsed.mbox ? '' : ' (mbox files need --mbox)'}`);
  }
  for await (const message of corpusMessages(parsed.forget, read)) {
    if (store.unlearn(await parseContent(message.bytes, { maxBytes: options.maxScanSize }))) counts.forgotten++;
    else counts.unknown++;
  }
  // Like sa-learn: the database's directory is made on first training.
  await mkdir(dirname(path), { recursive: true });
  await store.save();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const parts = [`${counts.learned} learned`, `${counts.relearned} moved to the other label`, `${counts.unchanged} already known`];
  if (parsed.forget.length > 0) parts.push(`${counts.forgotten} forgotten`, `${counts.unknown} never learned`);
  write(context.stdout, `${parts.join(', ')} in ${seconds}s`);
  write(context.stdout, describeStore(store, path));
  return 0;
}

function describeStore(store: BayesStore, path: string): string {
  return `${path}: ${store.spamCount} spam, ${store.hamCount} ham, ${store.tokenCount} tokens`;
}

async function stats(context: Context): Promise<number> {
  const path = bayesPath(context);
  const options = context.options.bayes!;
  const store = await BayesStore.open(path, { minSpam: options.minSpam, minHam: options.minHam });
  write(context.stdout, describeStore(store, path));
  const ready = store.spamCount >= options.minSpam && store.hamCount >= options.minHam;
  write(
    context.stdout,
    ready
      ? 'Bayes is in use: enough spam and ham were learned.'
      : `Bayes is not used yet: it needs at least ${options.minSpam} spam and ${options.minHam} ham (bayes.minSpam, bayes.minHam).`,
  );
  return 0;
}

interface CheckArgs {
  file: string;
  ip?: string | undefined;
  sender?: string | undefined;
  helo?: string | undefined;
}

function parseCheckArgs(args: readonly string[]): CheckArgs {
  const out: Partial<CheckArgs> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const option = /^--(ip|sender|helo)(?:=(.*))?$/.exec(arg);
    if (option) {
      const value = option[2] ?? args[++i];
      if (value === undefined) throw new UsageError(`check: --${option[1]} needs a value`);
      out[option[1] as 'ip' | 'sender' | 'helo'] = value;
    } else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`check: unknown option "${arg}"`);
    else if (out.file !== undefined) throw new UsageError('check: give one message file');
    else out.file = arg;
  }
  if (out.file === undefined) throw new UsageError('check: give a message file (or - for standard input)');
  if ((out.sender !== undefined || out.helo !== undefined) && out.ip === undefined) throw new UsageError('check: --sender and --helo need --ip');
  return out as CheckArgs;
}

async function check(args: readonly string[], context: Context): Promise<number> {
  const parsed = parseCheckArgs(args);
  const options = context.options;
  const dnsConfig = context.config.dns;
  const dns = new DnsResolver({ ...(dnsConfig.servers ? { servers: dnsConfig.servers } : {}), timeout: dnsConfig.timeout, retries: dnsConfig.retries });
  // Checks that fail say so on stderr, as the gateway would log them.
  const log = createLogger({ level: 'warn', format: 'pretty', write: (line) => context.stderr.write(line) });
  const bayes = options.bayes
    ? await BayesFile.open(resolve(context.configDir, options.bayes.file), {
        reloadInterval: Number.MAX_SAFE_INTEGER,
        log,
        store: { minSpam: options.bayes.minSpam, minHam: options.bayes.minHam },
      })
    : undefined;
  const checks = new SpamChecks(options, dns, log, bayes);
  const { bytes, truncated } =
    parsed.file === '-' ? await readStreamHead(process.stdin, options.maxScanSize + 1) : await readFileHead(parsed.file, options.maxScanSize + 1).catch((error: NodeJS.ErrnoException) => {
      throw new Error(`${parsed.file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
    });
  const tests: SpamTest[] = [];
  let spf: SpfResult | undefined;
  if (parsed.ip !== undefined) {
    const [ipTests, envelope] = await Promise.all([
      checks.ipListTests(parsed.ip),
      checks.envelope({ ip: parsed.ip, sender: parsed.sender ?? '', helo: parsed.helo ?? '', receiver: context.config.hostname }),
    ]);
    tests.push(...ipTests, ...envelope.tests);
    spf = envelope.spf?.result;
  }
  // DKIM needs only DNS, so it always runs; DMARC aligns with SPF only when --ip gave one. Like the
  // gateway, a message over maxScanSize gets no DKIM check (its body hash needs the whole body).
  if (!truncated) tests.push(...(await checks.authentication(bytes, spf)).tests);
  if (truncated) write(context.stdout, `The message is larger than maxScanSize (${options.maxScanSize} bytes): the gateway would run no content checks on it; only its head is checked here.`);
  // Dates are judged against the message's own arrival (its top Received: header), as SpamAssassin does.
  tests.push(...(await checks.content(bytes.subarray(0, options.maxScanSize), { now: 'received' })).tests);
  const score = totalScore(tests);
  const action = decideAction(score, options);
  write(context.stdout, report(tests, score, options, action));
  return 0;
}

/** `spamassassin -t`'s table. */
function report(tests: readonly SpamTest[], score: number, options: SpamOptions, action: string): string {
  const lines = [
    `Content analysis details:   (${formatScore(score)} points, ${formatScore(options.tag)} required)`,
    '',
    ' pts rule name              description',
    '---- ---------------------- --------------------------------------------------',
  ];
  for (const t of tests) lines.push(`${formatScore(t.score).padStart(4)} ${t.name.padEnd(22)} ${t.describe.replace(/[\r\n]+/g, ' ')}`);
  if (tests.length === 0) lines.push('     (no check fired)');
  const reject = options.reject === false ? 'never' : formatScore(options.reject);
  lines.push('', `Score ${formatScore(score)}: ${action} (tag ${formatScore(options.tag)}, ${options.tempfail !== undefined ? `tempfail ${formatScore(options.tempfail)}, ` : ''}reject ${reject})`);
  return lines.join('\n');
}
