/**
 * Loading a gateway configuration: YAML text → ${VAR} substitution → schema validation →
 * paths resolved against the config file's directory. Every problem becomes a
 * ConfigIssue with its key path and, when it came from a file, its line and column, so
 * the admin sees exactly what to fix before any port is opened.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue, formatPath, sortIssues } from './issues.js';
import { createErrorMap, didYouMean } from './messages.js';
import { coreConfigSchema, type GatewayConfig, type GatewayConfigInput } from './schema.js';
import { type ConfigPath, createLocator, type Position, parseYaml, substituteEnv, type YamlProblem } from './yaml.js';

export { ConfigError, type ConfigIssue, formatIssues, formatPath } from './issues.js';

export interface ConfigSource {
  /** The file name as given (used in messages), if the config came from a file. */
  file?: string;
  text?: string;
  /** Directory that relative paths (and plugin paths) are resolved against. */
  dir: string;
  /** Line and column (1-based) of the value at `path`, or of its key with `{ key: true }`. */
  locate(path: ConfigPath, options?: { key?: boolean }): Position | undefined;
}

/** Values that replace what the file says (e.g. from command-line flags); mappings merge, anything else replaces. */
export type ConfigOverrides = { [key: string]: unknown };

export type Env = Record<string, string | undefined>;

export interface ParseConfigOptions {
  file?: string;
  /** Variables for ${VAR} substitution; default process.env. */
  env?: Env;
  overrides?: ConfigOverrides;
}

export interface LoadedConfig {
  config: GatewayConfig;
  source: ConfigSource;
}

/** Parse YAML text (with ${ENV} substitution), validate with coreConfigSchema, resolve paths. Throws ConfigError. */
export function parseConfig(text: string, options: ParseConfigOptions = {}): LoadedConfig {
  const { file } = options;
  const { doc, lineCounter, problems } = parseYaml(text);
  const locateInYaml = createLocator(doc, lineCounter);
  const toIssue = (problem: YamlProblem): ConfigIssue => {
    const position = problem.offset === undefined ? undefined : lineCounter.linePos(problem.offset);
    return issue(problem.path, problem.message, position && { line: position.line, column: position.col }, file);
  };
  if (problems.length > 0) throw new ConfigError(problems.map(toIssue), file);

  const envProblems = substituteEnv(doc, options.env ?? process.env);
  if (envProblems.length > 0) throw new ConfigError(envProblems.map(toIssue), file);

  let data: unknown;
  try {
    // maxAliasCount bounds "billion laughs" alias expansion.
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new ConfigError([issue([], `invalid YAML: ${(error as Error).message}`, undefined, file)], file);
  }

  const overridden: ConfigPath[] = [];
  // Only into a mapping: anything else (a list, a scalar) must fail validation, not become `{}`.
  if (options.overrides && isPlainObject(data)) data = merge(data, options.overrides, [], overridden);

  const source: ConfigSource = {
    text,
    dir: file === undefined ? process.cwd() : dirname(resolve(file)),
    // A value that came from overrides has no place in the file.
    locate: (path, locateOptions) => (overridden.some((o) => isPrefix(o, path)) ? undefined : locateInYaml(path, locateOptions)),
  };
  if (file !== undefined) source.file = file;
  try {
    const config = validateWith(coreConfigSchema, data, source, []);
    return { config: resolvePaths(config, source.dir), source };
  } catch (error) {
    // The plugin list as written goes with the error, so the loader can check every
    // plugin's options too and report all problems at once, not in rounds.
    if (error instanceof ConfigError) Object.assign(error, { unchecked: { plugins: isPlainObject(data) ? data.plugins : undefined, source } });
    if (!(error instanceof ConfigError) || overridden.length === 0) throw error;
    // Say where a bad value came from, or the admin will search the file for it in vain.
    const issues = error.issues.map((i) => {
      if (!overridden.some((o) => isPrefix(o, i.path))) return i;
      const { file: _file, ...rest } = i;
      return { ...rest, message: `${i.message} (from overrides)` };
    });
    throw Object.assign(new ConfigError(issues, file), { unchecked: (error as ConfigError).unchecked });
  }
}

export async function loadConfigFile(file: string, options: Omit<ParseConfigOptions, 'file'> = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new ConfigError([issue([], `cannot read the configuration file: ${reason}`, undefined, file)], file);
  }
  return parseConfig(text, { ...options, file });
}

/**
 * Validate any value against a zod schema and on failure throw ConfigError whose issues
 * carry `prefix`-prefixed paths and lines from `source` (used by the plugin loader:
 * prefix = ['plugins', 2, 'with']).
 */
export function validateWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: ConfigSource | undefined,
  prefix: (string | number)[],
): z.output<S> {
  const known = new WeakMap<object, string[]>();
  const result = schema.safeParse(value, { error: createErrorMap(known) });
  if (result.success) return result.data;

  const issues: ConfigIssue[] = [];
  for (const zodIssue of result.error.issues.flatMap(expandUnion)) {
    const path = [...prefix, ...zodIssue.path.map((key) => (typeof key === 'number' ? key : String(key)))];
    if (zodIssue.code === 'unrecognized_keys') {
      // One issue per key, each pointing at the key itself, with a suggestion when close.
      for (const key of zodIssue.keys) {
        const message = `unknown key${didYouMean(key, known.get(zodIssue.keys) ?? [])}`;
        issues.push(issue([...path, key], message, source?.locate([...path, key], { key: true }), source?.file));
      }
    } else {
      issues.push(issue(path, zodIssue.message, source?.locate(path), source?.file));
    }
  }
  throw new ConfigError(sortIssues(issues), source?.file);
}

/**
 * Validate an in-code config object (embedding, no YAML): same checks and messages,
 * without lines. Relative paths resolve against `dir` (default: the working directory).
 * Input units are those of the YAML file: a bare number for a duration is seconds.
 */
export function resolveConfig(input: GatewayConfigInput | unknown, options: { dir?: string } = {}): GatewayConfig {
  const dir = resolve(options.dir ?? process.cwd());
  const config = validateWith(coreConfigSchema, input ?? {}, undefined, []);
  return resolvePaths(config, dir);
}

/**
 * For `z.union([z.string(), z.object(...)])` given a mapping, "does not match any form" is
 * useless: when exactly one alternative has the right type, report that one's problems.
 */
function expandUnion(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union') return [issue];
  const fitting = issue.errors.filter((branch) => !branch.some((i) => i.path.length === 0 && i.code === 'invalid_type'));
  const [only] = fitting;
  if (fitting.length !== 1 || !only || only.length === 0) return [issue];
  return only.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })).flatMap(expandUnion);
}

function resolvePaths(config: GatewayConfig, dir: string): GatewayConfig {
  // resolve() leaves absolute paths unchanged.
  return {
    ...config,
    ...(config.tls && { tls: { ...config.tls, key: resolve(dir, config.tls.key), cert: resolve(dir, config.tls.cert) } }),
    spool: { ...config.spool, dir: resolve(dir, config.spool.dir) },
  };
}

function issue(path: (string | number)[], message: string, position: Position | undefined, file: string | undefined): ConfigIssue {
  const result: ConfigIssue = { path, pathText: formatPath(path), message };
  if (file !== undefined) result.file = file;
  if (position) {
    result.line = position.line;
    result.column = position.column;
  }
  return result;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep-merge overrides into the parsed data, recording the paths they set. */
function merge(base: unknown, override: unknown, path: (string | number)[], set: ConfigPath[]): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) {
    set.push(path);
    return override;
  }
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value !== undefined) result[key] = merge(base[key], value, [...path, key], set);
  }
  return result;
}

function isPrefix(prefix: ConfigPath, path: ConfigPath): boolean {
  return prefix.length <= path.length && prefix.every((key, index) => String(key) === String(path[index]));
}
