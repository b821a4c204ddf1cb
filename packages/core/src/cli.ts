#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, validateWith } from './config/load.js';
import { hashPassword } from './auth/password.js';
import { coreVersion } from './core-version.js';
import { errorMessage } from './hooks.js';
import { importPlugin, loadGateway } from './loader.js';
import { createLogger, stackOf, type LogLevel } from './log.js';

const HELP = `mailgate: a plugin-pipeline SMTP gateway

Usage:
  mailgate serve [-c] gateway.yaml [--listen HOST:PORT]... [--log-level LEVEL] [--log-format json|pretty]
  mailgate check [-c] gateway.yaml
  mailgate passwd [USER]
  mailgate COMMAND -c gateway.yaml ...     (commands added by plugins, e.g. queue)
  mailgate --help | --version

Commands:
  serve     Load the config and its plugins, listen, and run until SIGTERM/SIGINT
            (graceful: stop accepting, let sessions finish within shutdownTimeout).
  check     Validate the config and every plugin's options, read the TLS key and
            certificate, print a summary, open no port.
            Exit status 0 when valid, 2 when not.
  passwd    Read a password (twice from a terminal, once from a pipe) and print its
            scrypt hash, as USER:HASH when USER is given (for plugin-acl's users file).

Options:
  -c, --config FILE     The gateway's YAML file (default: ./gateway.yaml)
  -l, --listen H:P      Listen on HOST:PORT instead of the config's listeners (repeatable;
                        [::1]:2525 for IPv6)
      --log-level L     trace | debug | info | warn | error | silent (overrides log.level)
      --log-format F    json | pretty (overrides log.format)
  -h, --help            This help
  -v, --version         Print the version

Exit status: 0 ok, 1 runtime error, 2 bad usage or invalid configuration,
70 serve ended by an uncaught exception (logged).
With -c FILE, --help also lists the commands FILE's plugins add.
Docs: the README of @mailgate/core and of each plugin.
`;

/** `mailgate serve --help` and the like: one command's usage. */
const COMMAND_HELP: Record<string, string> = {
  serve: `Usage: mailgate serve [-c] gateway.yaml [--listen HOST:PORT]... [--log-level LEVEL] [--log-format json|pretty]

Load the config and its plugins, listen, and run. Logs "started", then one line per
session, transaction and refusal. SIGTERM/SIGINT: stop accepting, let sessions finish
within shutdownTimeout, exit 0 ("stopped"); a second signal exits at once. SIGHUP:
re-read the TLS key and certificate (other changes need a restart).

  -c, --config FILE     The gateway's YAML file (default: ./gateway.yaml)
  -l, --listen H:P      Listen on HOST:PORT instead of the config's listeners (repeatable)
      --log-level L     trace | debug | info | warn | error | silent
      --log-format F    json | pretty
`,
  check: `Usage: mailgate check [-c] gateway.yaml

Validate the config and every plugin's options, read the TLS key and certificate, and
print a summary; open no port. Each mistake is one FILE:LINE:COLUMN: key.path: problem
line. Exit status 0 when valid, 2 when not.
`,
  passwd: `Usage: mailgate passwd [USER]

Read a password (twice from a terminal, once from a pipe) and print its scrypt hash, as
USER:HASH when USER is given: a line for plugin-acl's users file.
`,
};

/**
 * The commands the plugins of `file` add, for `mailgate --help -c FILE` (with their
 * summary). Quiet when the file or a plugin does not load: help must always work.
 */
async function pluginCommandsHelp(file: string): Promise<string> {
  try {
    const { config, source } = await loadConfigFile(file);
    const lines: string[] = [];
    for (const entry of config.plugins) {
      if (!entry.enabled) continue;
      const plugin = await importPlugin(entry.use, source.dir);
      for (const [name, command] of Object.entries(plugin.commands ?? {})) lines.push(`  ${name.padEnd(9)} ${command.summary}  (${plugin.name})`);
    }
    return lines.length === 0 ? '' : `\nCommands from the plugins of ${file} (mailgate COMMAND --help -c ${file}):\n${lines.join('\n')}\n`;
  } catch {
    return '';
  }
}

/** `127.0.0.1:2525`, `[::1]:2525`, or `:2525` (loopback). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new UsageError(`--listen: expected HOST:PORT such as 127.0.0.1:2525 or [::1]:2525, got "${text}"`);
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

class UsageError extends Error {}

const BUILTIN_COMMANDS = new Set(['serve', 'check', 'passwd']);

/** The first word that is not an option or an option's value. */
function findCommand(argv: string[]): { command: string | undefined; config: string | undefined } {
  let command: string | undefined;
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-c' || arg === '--config') config = argv[++i];
    else if (arg.startsWith('--config=')) config = arg.slice(9);
    else if (arg === '-l' || arg === '--listen' || arg === '--log-level' || arg === '--log-format') i++;
    else if (!arg.startsWith('-') && command === undefined) command = arg;
  }
  return { command, config };
}

async function main(argv: string[]): Promise<number> {
  const found = findCommand(argv);
  if (found.command && !BUILTIN_COMMANDS.has(found.command)) {
    if (found.config === undefined && !existsSync('gateway.yaml')) {
      // Without a config there is no plugin to ask: say so instead of "file not found".
      throw new UsageError(
        `unknown command "${found.command}": commands other than serve, check and passwd come from the plugins of a config ` +
          `(e.g. queue from @mailgate/plugin-relay, spam from @mailgate/plugin-spam); give it with -c FILE (./gateway.yaml does not exist)`,
      );
    }
    return pluginCommand(found.command, found.config ?? 'gateway.yaml', argv.slice(argv.indexOf(found.command) + 1));
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l', multiple: true },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help) {
    const topic = positionals[0];
    if (topic && COMMAND_HELP[topic]) {
      process.stdout.write(COMMAND_HELP[topic]);
      return 0;
    }
    // Only for a config named with -c: listing them imports the plugins (runs their code).
    process.stdout.write(HELP + (values.config === undefined ? '' : await pluginCommandsHelp(values.config)));
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${coreVersion()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (command === 'passwd') return passwd(positionals[1]);
  if (command !== 'serve' && command !== 'check') {
    throw new UsageError(command ? `unknown command "${command}"` : 'missing command (serve, check or passwd)');
  }
  // `mailgate check gateway.yaml` (the file without -c) is what people type: take it.
  if (positionals.length > 2 || (positionals[1] !== undefined && values.config !== undefined)) {
    throw new UsageError(`${command}: unexpected argument "${positionals.at(-1)}" (give the config once, with -c FILE or as FILE)`);
  }
  const file = values.config ?? positionals[1] ?? 'gateway.yaml';
  const overrides: Record<string, unknown> = {};
  if (values.listen?.length) overrides.listen = values.listen.map(parseListen);
  const log: Record<string, unknown> = {};
  if (values['log-level']) log.level = values['log-level'];
  if (values['log-format']) log.format = values['log-format'];
  if (Object.keys(log).length) overrides.log = log;

  const gateway = await loadGateway(file, { overrides });
  if (command === 'check') {
    await gateway.loadTls().catch(async (error: unknown) => {
      await gateway.close(0);
      throw error;
    });
    const c = gateway.config;
    process.stdout.write(
      `${file}: OK\n` +
        `  hostname  ${c.hostname}\n` +
        c.listen.map((l) => `  listen    ${l.host}:${l.port} (tls: ${l.tls})\n`).join('') +
        c.plugins.map((p) => `  plugin    ${p.use}${p.enabled ? '' : ' (disabled)'}\n`).join(''),
    );
    await gateway.close(0);
    return 0;
  }
  // A plugin's background promise that rejects with nobody listening would end the
  // process (Node's default) and drop every session: log it and go on. An exception
  // thrown outside any tap leaves state unknown: log it where the logs go, then exit.
  process.on('unhandledRejection', (reason) => {
    gateway.log.error('unhandled promise rejection (a plugin\'s background work?); the gateway goes on', { error: reason, stack: stackOf(reason, 12) });
  });
  process.on('uncaughtException', (error) => {
    gateway.log.error('uncaught exception; exiting', { error, stack: stackOf(error, 12) });
    process.exit(70);
  });
  // SIGHUP: re-read the TLS certificate (a renewal), as `postfix reload` would; anything
  // else in the config needs a restart. (Until here the bin shim ignores it: a SIGHUP
  // while the gateway loads must not end the process.)
  process.on('SIGHUP', () => {
    gateway.reloadTls().then(
      (reloaded) =>
        reloaded
          ? gateway.log.info('SIGHUP: TLS key and certificate reloaded', { cert: gateway.config.tls?.cert })
          : gateway.log.info('SIGHUP: nothing to reload (no tls: in the config); other changes need a restart'),
      (error: unknown) => gateway.log.error('SIGHUP: TLS reload failed, keeping the current certificate', { error: errorMessage(error) }),
    );
  });
  await gateway.listen();
  gateway.log.info('started', { version: coreVersion(), config: file, pid: process.pid });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        gateway.log.warn('second signal, exiting now', { signal });
        process.exit(1);
      }
      stopping = true;
      gateway.log.info('shutting down', { signal, connections: gateway.connections });
      gateway.close().then(
        () => {
          gateway.log.info('stopped', { signal });
          resolve(0);
        },
        (error: unknown) => {
          gateway.log.error('shutdown failed', { error });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * A subcommand contributed by a plugin of the config (e.g. plugin-relay's `queue`):
 * load the config, find the plugin, validate its options, run the command.
 */
async function pluginCommand(name: string, file: string, rest: string[]): Promise<number> {
  const { config, source } = await loadConfigFile(file);
  for (const [index, entry] of config.plugins.entries()) {
    if (!entry.enabled) continue;
    const plugin = await importPlugin(entry.use, source.dir);
    const command = plugin.commands?.[name];
    if (!command) continue;
    const args = stripConfigFlag(rest);
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(`${command.usage}\n`);
      return 0;
    }
    const options = plugin.options ? validateWith(plugin.options, entry.with, source, ['plugins', index, 'with']) : entry.with;
    return command.run(args, { options, configDir: source.dir, config, stdout: process.stdout, stderr: process.stderr });
  }
  throw new UsageError(`unknown command "${name}" (no plugin in ${file} provides it)`);
}

/** Plugin commands get their own arguments, without the -c/--config the CLI already used. */
function stripConfigFlag(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '--config') i++;
    else if (!arg.startsWith('--config=')) out.push(arg);
  }
  return out;
}

async function passwd(user: string | undefined): Promise<number> {
  if (user !== undefined && !/^[^:\s]+$/.test(user)) throw new UsageError('passwd: USER must not contain ":" or spaces');
  const first = await readSecret('Password: ');
  if (process.stdin.isTTY && (await readSecret('Again: ')) !== first) {
    process.stderr.write('mailgate passwd: the passwords differ\n');
    return 2;
  }
  if (!first) {
    process.stderr.write('mailgate passwd: empty password\n');
    return 2;
  }
  const hash = await hashPassword(first);
  process.stdout.write(user === undefined ? `${hash}\n` : `${user}:${hash}\n`);
  return 0;
}

/** One line from stdin; on a terminal, prompt on stderr without echoing what is typed. */
async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve) => {
    let text = '';
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.off('data', onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write('\n');
          return resolve(text);
        }
        if (ch === '\u0003') process.exit(130);
        text = ch === '\u007f' ? text.slice(0, -1) : text + ch;
      }
    };
    stdin.on('data', onData);
  });
}

// `mailgate queue list | head`: the reader is gone; stop quietly, as postqueue -p does,
// instead of an unhandled 'error' event and a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`mailgate: invalid configuration\n${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`mailgate: ${errorMessage(error)}\nRun "mailgate --help" for usage.\n`);
      process.exitCode = 2;
    } else {
      createLogger({ format: 'pretty' }).error('mailgate failed', { error: errorMessage(error) });
      process.exitCode = 1;
    }
  },
);

export type { LogLevel };
