/**
 * The core configuration schema. Every object is strict (a misspelt key is an error,
 * never silently ignored) and every default is the safe choice: loopback only, limits on.
 * Paths are kept as written here; the loader resolves them against the config file's
 * directory, which the schema cannot know.
 */
import { isIP } from 'node:net';
import { hostname as osHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { expecting } from './messages.js';
import { durationSchema, formatDuration, sizeSchema } from './units.js';

const DOMAIN_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** A DNS name (RFC 1123 labels). Single-label names like "localhost" are accepted. */
export function isDomainName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => DOMAIN_LABEL.test(label));
}

function defaultHostname(): string {
  const name = osHostname();
  return isDomainName(name) ? name : 'localhost';
}

/**
 * Inside `{ }` or `[ ]` a ${VAR} must be quoted, which makes it a string; so numeric and
 * boolean fields also take their exact string spelling ("2525", "true").
 */
function fromString<S extends z.ZodType>(schema: S, read: (text: string) => unknown) {
  return z.preprocess<unknown, S, z.input<S> | string>((value) => (typeof value === 'string' ? read(value) : value), schema);
}
const readInt = (text: string): unknown => (/^[-+]?\d+$/.test(text) ? Number(text) : text);
const readBool = (text: string): unknown => (text === 'true' ? true : text === 'false' ? false : text);

/** An integer in [min, max], with one message naming the whole range. */
function int(min: number, max?: number) {
  const what = max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
  const error = expecting(what);
  const atLeast = z.int({ error }).min(min, { error });
  return fromString(max === undefined ? atLeast : atLeast.max(max, { error }), readInt);
}

/** setTimeout fires at once for delays above 2^31-1 ms (~24.8 days), which would turn a long timeout into none. */
const MAX_TIMEOUT_MS = 24 * 86_400_000;
const timeout = () =>
  durationSchema.refine((ms) => ms > 0 && ms <= MAX_TIMEOUT_MS, {
    error: (issue) => `expected a duration from 1ms to ${formatDuration(MAX_TIMEOUT_MS)}, got ${formatDuration(Number(issue.input))}`,
  });

/**
 * A section that may be left empty: `limits:` with every entry commented out is common in
 * a hand-edited file and means "all defaults", not an error.
 */
function section<T extends z.ZodType<object, object>>(schema: T) {
  return schema
    .prefault({} as z.input<T>)
    .nullable()
    .transform((value): z.output<T> => value ?? schema.parse({}));
}

const bool = () => fromString(z.boolean({ error: expecting('true or false') }), readBool);
const nonEmpty = (what: string) => z.string({ error: expecting(what) }).min(1, { error: 'must not be empty' });

const hostSchema = z.string({ error: expecting('an IP address or a host name') }).refine((h) => isIP(h) !== 0 || isDomainName(h), {
  error: (issue) => `expected an IP address or a host name, got ${JSON.stringify(issue.input)}`,
});

const listenerSchema = z.strictObject({
  host: hostSchema.default('127.0.0.1'),
  port: int(0, 65535),
  /** Unset: 'starttls' when the top-level tls section exists, else 'none' (filled in below). */
  tls: z.enum(['none', 'starttls', 'implicit']).optional(),
});

const dnsSchema = z.strictObject({
  /** Name servers ("ip", "ip:port", "[v6]:port"); default: those of /etc/resolv.conf. */
  servers: z.array(nonEmpty('a name server address such as 127.0.0.1 or 127.0.0.1:5353'), { error: expecting('a list of name servers') }).optional(),
  /** Per attempt, per server. */
  timeout: timeout().default(2_000),
  /** Rounds over the server list. */
  retries: int(1, 10).default(2),
});

const tlsSchema = z.strictObject({
  key: nonEmpty('a file path'),
  cert: nonEmpty('a file path'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
});

const limitsSchema = z.strictObject({
  maxMessageSize: sizeSchema.refine((n) => n > 0, { message: 'must be greater than 0' }).default(25 * 1024 ** 2),
  maxRecipients: int(1).default(100),
  maxConnections: int(1).default(1000),
  maxConnectionsPerIp: int(1).default(50),
  /**
   * maxConnectionsPerIp counts an IPv6 client by its network of this prefix length, not by
   * its address: one host commonly has a whole /64. 128 counts each address (IPv4 is always per address).
   */
  ipv6PrefixLength: int(32, 128).default(64),
  /** After this many error replies in a session: 421 and close. */
  maxErrors: int(1).default(10),
  /** RFC 5321 §4.5.3.1.4: servers must accept command lines of 512 octets. With DSN on, MAIL lines may be 100 and RCPT lines 500 longer (RFC 3461 §4). */
  maxCommandLineLength: int(512).default(512),
  maxUnrecognizedCommands: int(1).default(5),
  /** NOOP, RSET, VRFY and HELP a session may send before each further one counts toward maxErrors (Postfix's smtpd_junk_command_limit). */
  maxJunkCommands: int(0).default(100),
  /** Wait for each command line. */
  idleTimeout: timeout().default(60_000),
  /** The whole DATA or BDAT phase of one message. */
  dataTimeout: timeout().default(5 * 60_000),
});

const smtpSchema = z.strictObject({
  /** Text after "220 <hostname> ESMTP"; CR/LF would let it forge extra reply lines. */
  banner: z
    .string({ error: expecting('a string') })
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be a single line without control characters' })
    .default(''),
  bareLineEndings: z.enum(['reject', 'normalize']).default('reject'),
  authWithoutTls: bool().default(false),
  /** Refuse MAIL until the client has used STARTTLS (or connected with implicit TLS). */
  requireTls: bool().default(false),
  pipelining: bool().default(true),
  chunking: bool().default(true),
  smtputf8: bool().default(true),
  /** DSN (RFC 3461): advertised, RET/ENVID/NOTIFY/ORCPT accepted and kept on the transaction for plugins. */
  dsn: bool().default(true),
  /** VRFY is answered 252 (cannot verify), never with real mailbox data. */
  vrfy: bool().default(true),
});

const spoolSchema = z.strictObject({
  dir: nonEmpty('a directory path').default(() => join(tmpdir(), 'mailgate-spool')),
  /** Bodies up to this size stay in memory; larger ones stream to a file. */
  memoryThreshold: sizeSchema.default(128 * 1024),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
  format: z.enum(['json', 'pretty']).default('json'),
});

export const pluginSchema = z.strictObject({
  /** A package name, a path like ./plugins/x.js (relative to the config file), or a built-in name. */
  use: nonEmpty('a plugin name or path'),
  /** Checked later against the plugin's own schema; absent or empty means {}. */
  with: z
    .unknown()
    .optional()
    .transform((value) => value ?? {}),
  /** Overrides the top-level pluginTimeout for this plugin's hooks. */
  timeout: timeout().optional(),
  /** false turns a plugin off without deleting its configuration. */
  enabled: bool().default(true),
});

const rootSchema = z.strictObject({
  /** Our name in the greeting, EHLO reply and Received: headers. */
  hostname: z
    .string({ error: expecting('a domain name') })
    .refine(isDomainName, { error: (issue) => `expected a domain name like "mx.example.com", got ${JSON.stringify(issue.input)}` })
    .default(defaultHostname),
  listen: z
    .array(listenerSchema, { error: expecting('a list of listeners') })
    .min(1, { error: 'must list at least one listener' })
    .nullish()
    .transform((list) => list ?? [{ host: '127.0.0.1', port: 2525, tls: undefined }]),
  /** Certificate and key; without this section there is no STARTTLS and no implicit TLS. */
  tls: tlsSchema.nullish().transform((tls) => tls ?? undefined),
  limits: section(limitsSchema),
  smtp: section(smtpSchema),
  spool: section(spoolSchema),
  log: section(logSchema),
  dns: section(dnsSchema),
  pluginTimeout: timeout().default(30_000),
  shutdownTimeout: timeout().default(30_000),
  plugins: z
    .array(pluginSchema, { error: expecting('a list of plugins') })
    .nullish()
    .transform((list) => list ?? []),
});

export const coreConfigSchema = rootSchema
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.listen.forEach((listener, index) => {
      if (listener.tls !== undefined && listener.tls !== 'none' && !config.tls) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen', index, 'tls'],
          message: `"${listener.tls}" needs the top-level tls section (key and cert)`,
        });
      }
      // Port 0 asks the OS for a fresh port each time, so repeats are fine.
      const address = `${listener.host}:${listener.port}`;
      const first = seen.get(address);
      if (listener.port !== 0 && first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['listen', index, 'port'], message: `${address} is already used by listen[${first}]` });
      } else seen.set(address, index);
    });
    if (config.smtp.requireTls && !config.tls) {
      ctx.addIssue({
        code: 'custom',
        path: ['smtp', 'requireTls'],
        message: 'needs the top-level tls section (key and cert); without it no client could send mail',
      });
    }
  })
  .transform((config) => ({
    ...config,
    listen: config.listen.map((listener) => ({
      ...listener,
      tls: listener.tls ?? (config.tls ? ('starttls' as const) : ('none' as const)),
    })),
  }));

export type GatewayConfig = z.output<typeof coreConfigSchema>;
export type GatewayConfigInput = z.input<typeof coreConfigSchema>;
export type ListenerConfig = GatewayConfig['listen'][number];
export type PluginEntry = GatewayConfig['plugins'][number];
