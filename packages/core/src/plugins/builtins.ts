import type { PluginDefinition } from '../plugin.js';
import { discardPlugin } from './discard.js';

/** Plugins shipped inside the core, usable in YAML by bare name (`use: discard`). */
export const builtinPlugins: ReadonlyMap<string, PluginDefinition> = new Map<string, PluginDefinition>([['discard', discardPlugin as PluginDefinition]]);
