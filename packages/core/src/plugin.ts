import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import type { DnsResolver } from './dns/index.js';
import type { GatewayConfig } from './config/schema.js';
import type { GatewayHooks, TapContext } from './hooks.js';
import type { Logger } from './log.js';
import type { SubmitOptions, SubmitResult } from './submit.js';
import { coreRangeAccepts, coreVersion } from './core-version.js';

/** What a plugin's `setup` receives: its validated options and the gateway to tap. */
export interface PluginContext<Options> {
  /** The plugin's instance name: what its taps, claims and audit entries are recorded under. */
  readonly name: string;
  readonly options: Options;
  readonly hooks: GatewayHooks;
  /**
   * Tap a hook under this plugin's name and timeout. `tap('rcpt', fn)` = `hooks.rcpt.tapPromise({ name }, fn)`.
   * `fn` gets the hook's arguments, then a TapContext: `tap('rcpt', async (session, tx, rcpt, { signal }) => …)`.
   */
  tap<H extends keyof GatewayHooks>(hook: H, fn: TapFn<H>, options?: { stage?: number; timeout?: number }): void;
  readonly gateway: PluginGatewayView;
  readonly log: Logger;
  /** Directory relative paths in the plugin's options are meant against (the config file's directory). */
  readonly configDir: string;
  /** Run `fn` when the gateway closes (flush state, close files, stop timers). */
  onClose(fn: () => void | Promise<void>): void;
  /**
   * Run `fn` once the gateway listens. Start background work here (a delivery queue,
   * timers), not in setup: `mailgate check` runs setup too, and must do nothing else.
   */
  onListen(fn: () => void | Promise<void>): void;
}

/** The parts of the gateway a plugin may use. */
export interface PluginGatewayView {
  readonly hostname: string;
  readonly config: GatewayConfig;
  /** The shared DNS stub resolver (cache shared by every plugin). */
  readonly dns: DnsResolver;
  /** Declare a domain as delivered locally: unclaimed recipients there get `550 5.1.1`, not `554 5.7.1`. */
  addLocalDomain(domain: string): void;
  isLocalDomain(domain: string): boolean;
  /** The local domains, folded, in the order plugins declared them (e.g. for a default postmaster@ address). */
  listLocalDomains(): string[];
  /** The addresses the gateway listens on, once it listens (empty before): real ports for port 0. */
  readonly addresses: AddressInfo[];
  /** Hand a message the gateway made itself (a bounce) to its own plugins; see `Gateway.submit()`. */
  submit(options: SubmitOptions): Promise<SubmitResult>;
}

type HookArgs<H extends keyof GatewayHooks> = GatewayHooks[H] extends { promise(...args: infer A): unknown } ? A : never;
type HookResult<H extends keyof GatewayHooks> = GatewayHooks[H] extends { promise(...args: never[]): Promise<infer R> } ? R : never;
/** A tap of hook `H`: the hook's arguments, then the call's TapContext (which it may leave out). */
export type TapFn<H extends keyof GatewayHooks> = (...args: [...HookArgs<H>, TapContext]) => HookResult<H> | Promise<HookResult<H>>;

export interface PluginDefinition<Schema extends z.ZodType = z.ZodType> {
  /** Package-style name, e.g. "@mailgate/plugin-acl"; also the default tap name. */
  readonly name: string;
  /** zod schema of the plugin's options (`with:` in YAML). Omit for a plugin without options. */
  readonly options?: Schema;
  /** The @mailgate/core versions the plugin was written for, as an npm range ("0.x", "^0.1", ">=0.1 <2"), checked at load. */
  readonly core?: string;
  setup(context: PluginContext<z.output<Schema>>): void | Promise<void>;
  /**
   * Subcommands this plugin adds to the `mailgate` CLI, e.g. `queue` for
   * `mailgate queue list -c gateway.yaml`. They run with the plugin's validated
   * options from the config, without starting the gateway.
   */
  readonly commands?: Readonly<Record<string, PluginCommand<z.output<Schema>>>>;
}

export interface PluginCommand<Options = unknown> {
  /** One line for `mailgate --help`. */
  readonly summary: string;
  /** Usage text shown by `mailgate COMMAND --help`. */
  readonly usage: string;
  /** Returns the process exit status. */
  run(args: readonly string[], context: PluginCommandContext<Options>): Promise<number>;
}

export interface PluginCommandContext<Options> {
  readonly options: Options;
  readonly configDir: string;
  readonly config: GatewayConfig;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const PLUGIN = Symbol.for('mailgate.plugin');

/**
 * Declare a plugin. The options schema is what the config loader validates `with:`
 * against, with the key path and line of any mistake.
 *
 *   export default definePlugin({
 *     name: 'my-plugin',
 *     options: z.strictObject({ greeting: z.string() }),
 *     setup({ tap, options }) { tap('helo', (session) => { ... }) },
 *   });
 */
export function definePlugin<Schema extends z.ZodType>(definition: PluginDefinition<Schema>): PluginDefinition<Schema> {
  if (!definition || typeof definition.name !== 'string' || !definition.name) throw new TypeError('definePlugin: a plugin needs a name');
  if (typeof definition.setup !== 'function') throw new TypeError(`definePlugin: plugin "${definition.name}" needs a setup function`);
  Object.defineProperty(definition, PLUGIN, { value: true });
  return Object.freeze(definition);
}

export function isPlugin(value: unknown): value is PluginDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN] === true;
}

/**
 * What the core refuses in a plugin entry before running the plugin, with the key of the
 * entry each problem belongs to: a `core` range that does not accept this core, and
 * options for a plugin without an options schema (nothing would read them). Used when a
 * plugin is added, and by the loader when it lists every mistake of a config at once.
 */
export function pluginEntryProblems(plugin: PluginDefinition, options: unknown): Array<{ key: 'use' | 'with'; message: string }> {
  const problems: Array<{ key: 'use' | 'with'; message: string }> = [];
  if (plugin.core !== undefined) {
    const accepted = coreRangeAccepts(String(plugin.core), coreVersion());
    if (accepted === undefined) {
      problems.push({ key: 'use', message: `plugin "${plugin.name}" declares core: ${JSON.stringify(plugin.core)}, which is not a range of @mailgate/core versions (e.g. "0.x", "1", "^0.1")` });
    } else if (!accepted) {
      problems.push({ key: 'use', message: `plugin "${plugin.name}" was written for @mailgate/core ${plugin.core}; this is @mailgate/core ${coreVersion()}` });
    }
  }
  if (!plugin.options && !isEmptyOptions(options)) problems.push({ key: 'with', message: `plugin "${plugin.name}" takes no options` });
  return problems;
}

/** No options given: nothing, or an empty mapping (`with: {}`). */
function isEmptyOptions(options: unknown): boolean {
  return options === undefined || options === null || (typeof options === 'object' && !Array.isArray(options) && Object.keys(options).length === 0);
}
