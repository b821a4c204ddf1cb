/** Configuration: the core schema, units, and loading YAML with precise error locations. */
export {
  coreConfigSchema,
  isDomainName,
  type GatewayConfig,
  type GatewayConfigInput,
  type ListenerConfig,
  type PluginEntry,
} from './schema.js';
export { durationSchema, formatDuration, formatSize, parseDuration, parseSize, sizeSchema } from './units.js';
export {
  ConfigError,
  type ConfigIssue,
  type ConfigOverrides,
  type ConfigSource,
  type Env,
  formatIssues,
  formatPath,
  type LoadedConfig,
  loadConfigFile,
  type ParseConfigOptions,
  parseConfig,
  resolveConfig,
  validateWith,
} from './load.js';
export { describeValue } from './messages.js';
