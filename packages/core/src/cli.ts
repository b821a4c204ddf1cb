#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from './config/load.js';
import { errorMessage } from './hooks.js';
import { loadGateway } from './loader.js';
import { createLogger, type LogLevel } from './log.js';

const HELP = `mailgate: a plugin-pipeline SMTP gateway

Usage:
  mailgate serve -c gateway.yaml [--listen HOST:PORT]... [--log-level LEVEL] [--log-format json|pretty]
  mailgate check -c gateway.yaml
  mailgate --help | --version

Commands:
  serve     Load the config and its plugins, listen, and run until SIGTERM/SIGINT
            (graceful: stop accepting, let sessions finish within shutdownTimeout).
  check     Validate the config and every plugin's options, print a summary, open no port.
            Exit status 0 when valid, 2 when not.

Options:
  -c, --config FILE     The gateway's YAML file (default: ./gateway.yaml)
  -l, --listen H:P      Listen on HOST:PORT instead of the config's listeners (repeatable;
                        [::1]:2525 for IPv6)
      --log-level L     trace | debug | info | warn | error | silent (overrides log.level)
      --log-format F    json | pretty (overrides log.format)
  -h, --help            This help
  -v, --version         Print the version

Exit status: 0 ok, 1 runtime error, 2 bad usage or invalid configuration.
Docs: the README of @mailgate/core and of each plugin.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `127.0.0.1:2525`, `[::1]:2525`, or `:2525` (loopback). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new UsageError(`--listen: expected HOST:PORT such as 127.0.0.1:2525 or [::1]:2525, got "${text}"`);
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
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
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (command !== 'serve' && command !== 'check') {
    throw new UsageError(command ? `unknown command "${command}"` : 'missing command (serve or check)');
  }
  const file = values.config ?? 'gateway.yaml';
  const overrides: Record<string, unknown> = {};
  if (values.listen?.length) overrides.listen = values.listen.map(parseListen);
  const log: Record<string, unknown> = {};
  if (values['log-level']) log.level = values['log-level'];
  if (values['log-format']) log.format = values['log-format'];
  if (Object.keys(log).length) overrides.log = log;

  const gateway = await loadGateway(file, { overrides });
  if (command === 'check') {
    const c = gateway.config;
    process.stdout.write(
      `${file}: OK\n` +
        `  hostname  ${c.hostname}\n` +
        c.listen.map((l) => `  listen    ${l.host}:${l.port} (tls: ${l.tls})\n`).join('') +
        c.plugins.map((p) => `  plugin    ${p.use}${p.enabled ? '' : ' (disabled)'}\n`).join(''),
    );
    return 0;
  }
  await gateway.listen();
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
        () => resolve(0),
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
