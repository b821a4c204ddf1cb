import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, loadConfigFile, parseConfig, validateWith, type ConfigIssue, type ConfigOverrides, type ConfigSource, type Env } from './config/load.js';
import { formatPath, sortIssues } from './config/issues.js';
import { didYouMean } from './config/messages.js';
import { pluginSchema } from './config/schema.js';
import type { DnsResolver } from './dns/index.js';
import { Gateway, markResolved } from './gateway.js';
import { errorMessage } from './hooks.js';
import type { Logger } from './log.js';
import { isPlugin, pluginEntryProblems, type PluginDefinition } from './plugin.js';
import { builtinPlugins } from './plugins/builtins.js';

export interface LoadGatewayOptions {
  env?: Env;
  /** Values that replace the file's (e.g. `--listen` from the command line). */
  overrides?: ConfigOverrides;
  logger?: Logger;
  dns?: DnsResolver;
}

/**
 * Build a gateway from a YAML file: validate the core config, then load every
 * enabled plugin of the list in order and validate its `with:` against the
 * plugin's own schema. All problems are reported together, with key paths and
 * lines, before any port is opened.
 */
export async function loadGateway(file: string, options: LoadGatewayOptions = {}): Promise<Gateway> {
  const { config, source } = await loadConfigFile(file, { ...(options.env ? { env: options.env } : {}), ...(options.overrides ? { overrides: options.overrides } : {}) }).catch(
    withPluginIssues,
  );
  return buildGateway(config, source, options);
}

/**
 * The core config was invalid: check the plugins' options as written too, so that one
 * `mailgate check` lists every problem, not the core's first and the plugins' next time.
 */
async function withPluginIssues(error: unknown): Promise<never> {
  if (!(error instanceof ConfigError) || !error.unchecked || !Array.isArray(error.unchecked.plugins)) throw error;
  const { plugins, source } = error.unchecked;
  const issues = [...error.issues];
  for (const [index, raw] of (plugins as unknown[]).entries()) {
    // An entry the core already found wrong (no `use`, a bad key) says enough.
    const parsed = pluginSchema.safeParse(raw);
    if (!parsed.success || !parsed.data.enabled || error.issues.some((i) => i.path[0] === 'plugins' && i.path[1] === index)) continue;
    const { use, with: options } = parsed.data;
    const path = ['plugins', index, 'use'];
    let plugin: PluginDefinition;
    try {
      plugin = await importPlugin(use, source.dir);
    } catch (cause) {
      issues.push({ path, pathText: formatPath(path), message: errorMessage(cause), ...source.locate(path), ...(source.file ? { file: source.file } : {}) });
      continue;
    }
    for (const problem of pluginEntryProblems(plugin, options)) {
      const at = ['plugins', index, problem.key];
      issues.push({ path: at, pathText: formatPath(at), message: problem.message, ...source.locate(at), ...(source.file ? { file: source.file } : {}) });
    }
    if (!plugin.options) continue;
    try {
      validateWith(plugin.options, options ?? {}, source, ['plugins', index, 'with']);
    } catch (invalid) {
      if (invalid instanceof ConfigError) issues.push(...invalid.issues);
    }
  }
  throw new ConfigError(sortIssues(issues), error.file);
}

/** Same as loadGateway, from YAML text (tests, `mailgate check -`). */
export async function gatewayFromYaml(text: string, options: LoadGatewayOptions & { file?: string } = {}): Promise<Gateway> {
  let loaded: ReturnType<typeof parseConfig>;
  try {
    loaded = parseConfig(text, {
      ...(options.file ? { file: options.file } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.overrides ? { overrides: options.overrides } : {}),
    });
  } catch (error) {
    return withPluginIssues(error);
  }
  return buildGateway(loaded.config, loaded.source, options);
}

async function buildGateway(config: Gateway['config'], source: ConfigSource, options: LoadGatewayOptions): Promise<Gateway> {
  const gateway = new Gateway(markResolved(config), {
    source,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.dns ? { dns: options.dns } : {}),
  });
  const issues: ConfigIssue[] = [];
  for (const [index, entry] of config.plugins.entries()) {
    if (!entry.enabled) continue;
    const at = (path: (string | number)[]) => source.locate(path);
    let plugin: PluginDefinition;
    try {
      plugin = await importPlugin(entry.use, source.dir);
    } catch (error) {
      const path = ['plugins', index, 'use'];
      issues.push({ path, pathText: formatPath(path), message: errorMessage(error), ...at(path), ...(source.file ? { file: source.file } : {}) });
      continue;
    }
    try {
      await gateway.use(plugin, entry.with, { index, ...(entry.timeout === undefined ? {} : { timeout: entry.timeout }) });
    } catch (error) {
      if (error instanceof ConfigError) issues.push(...error.issues);
      else {
        const path = ['plugins', index];
        issues.push({
          path,
          pathText: formatPath(path),
          message: `plugin "${plugin.name}" failed to start: ${errorMessage(error)}`,
          ...at(path),
          ...(source.file ? { file: source.file } : {}),
        });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, source.file);
  return gateway;
}

/** The plugins published with the core: what a misspelt `use:` most likely meant. */
const OFFICIAL_PLUGINS = ['@mailgate/plugin-acl', '@mailgate/plugin-spam', '@mailgate/plugin-relay', '@mailgate/plugin-maildir'];

/** Resolve `use:`: a built-in name, a path relative to the config file, or a package name. */
export async function importPlugin(use: string, dir: string): Promise<PluginDefinition> {
  const builtin = builtinPlugins.get(use);
  if (builtin) return builtin;
  // data:, file:, http:, node: … are not plugins: a data: URL would even run code before being refused.
  if (/^[a-z][a-z0-9+.-]*:/i.test(use)) {
    throw new Error(`"${use}" is not a package name or a path (URLs such as data: or node: cannot be plugins)`);
  }
  const isPath = use.startsWith('.') || isAbsolute(use);
  let url: string;
  if (isPath) url = pathToFileURL(resolve(dir, use)).href;
  else {
    try {
      // Resolve from the config's directory first, so a gateway folder can have its own node_modules.
      url = pathToFileURL(createRequire(join(dir, 'noop.js')).resolve(use)).href;
    } catch {
      try {
        url = import.meta.resolve(use);
      } catch {
        const scoped = `@mailgate/${use}`;
        const hint = OFFICIAL_PLUGINS.includes(scoped) ? ` (did you mean "${scoped}"?)` : didYouMean(use, [...builtinPlugins.keys(), ...OFFICIAL_PLUGINS]);
        throw new Error(`cannot find plugin "${use}"${hint}: not a built-in (${[...builtinPlugins.keys()].join(', ')}), and no such package is installed (npm install ${use})`);
      }
    }
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const where = await syntaxErrorLocation(error, url);
    throw new Error(`cannot load plugin "${use}": ${errorMessage(error)}${where === undefined ? '' : ` (at ${where})`}`);
  }
  const candidate = module.default ?? module.plugin;
  if (!isPlugin(candidate)) {
    throw new Error(`"${use}" does not export a Mailgate plugin (export default definePlugin({ ... }))`);
  }
  return candidate;
}

/**
 * Where a SyntaxError raised by importing a plugin is: `file:line:column` (or
 * `file:line`), or undefined when that cannot be told. Node puts the location in the
 * stack for CommonJS files (`/path/x.js:2` above the message) and for SyntaxErrors
 * thrown while the module runs (a frame such as `at file:///path/x.js:1:21`,
 * e.g. JSON.parse); for an ES module that does not parse, Node 20 keeps it out of
 * the error's `stack`, so the file is checked with `node --check`, which parses
 * without running anything. A syntax error in a module the plugin imports is then
 * not located (the plugin file itself parses), and only the message is reported.
 */
async function syntaxErrorLocation(error: unknown, url: string): Promise<string | undefined> {
  let stack: string;
  try {
    if (!(error instanceof Error) || error.name !== 'SyntaxError' || typeof error.stack !== 'string') return undefined;
    stack = error.stack;
  } catch {
    return undefined;
  }
  const lines = stack.split('\n');
  // CommonJS: "<file>:<line>", the source line, a caret under the column, "", "SyntaxError: …".
  const head = /^(.+):(\d+)$/.exec(lines[0] ?? '');
  if (head && !/^\w*Error\b/.test(lines[0] ?? '')) return `${displayPath(head[1]!)}:${head[2]}${caretColumn(lines[2])}`;
  // Thrown while the module ran: the first frame in a file.
  for (const line of lines.slice(1)) {
    const frame = /^\s+at (?:.*\()?((?:file:\/\/|\/|[A-Za-z]:\\).+?):(\d+):(\d+)\)?$/.exec(line);
    if (frame) return `${displayPath(frame[1]!)}:${frame[2]}:${frame[3]}`;
  }
  if (!url.startsWith('file:')) return undefined;
  const file = fileURLToPath(url);
  const line = await checkModuleSyntax(file);
  return line === undefined ? undefined : `${file}:${line}`;
}

/** A file: URL as a path; a path as it is. */
function displayPath(where: string): string {
  try {
    return where.startsWith('file:') ? fileURLToPath(where) : where;
  } catch {
    return where;
  }
}

/** ":<column>" from the caret line Node prints under the source line, or ''. */
function caretColumn(caret: string | undefined): string {
  const at = caret === undefined || !/^\s*\^+\s*$/.test(caret) ? -1 : caret.indexOf('^');
  return at < 0 ? '' : `:${at + 1}`;
}

/**
 * Parse `file` as an ES module in a child `node --check` (which never runs it) and
 * return "<line>:<column>" of its syntax error, or undefined if it parses, or the
 * check could not be run or took longer than 5 s.
 */
async function checkModuleSyntax(file: string): Promise<string | undefined> {
  let source: string;
  try {
    // process.execPath is a Node that takes --check, not an app that embeds Node (Electron, a single executable).
    if (process.release.name !== 'node' || process.versions.electron !== undefined || process.versions.bun !== undefined) return undefined;
    if (await import('node:sea').then((sea) => sea.isSea(), () => false)) return undefined;
    source = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  return new Promise((done) => {
    let stderr = '';
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(process.execPath, ['--check', '--input-type=module'], { stdio: ['pipe', 'ignore', 'pipe'], timeout: 5_000, env: {} });
    } catch {
      done(undefined);
      return;
    }
    child.on('error', () => done(undefined));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 65_536) stderr += chunk;
    });
    child.on('close', (code) => {
      // "[stdin]:<line>", the source line, the caret, "", "SyntaxError: …"
      const lines = stderr.split('\n');
      const head = /^\[stdin\]:(\d+)$/.exec(lines[0] ?? '');
      done(code !== 0 && head ? `${head[1]}${caretColumn(lines[2])}` : undefined);
    });
    child.stdin?.on('error', () => {}).end(source);
  });
}
