/**
 * Options of @mailgate/plugin-relay (`with:` in YAML). Durations accept "200ms",
 * "5m", "1h30m"; every default is a safe production value.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { durationSchema } from '@mailgate/core';

const tlsMode = z.enum(['opportunistic', 'required', 'none']);

const HOST_PORT = /^(?:\[([^\]]*)\]|[^\s:[\]]+)(?::(\d+))?$/;

/**
 * "host", "host:port", "[address]" or "[address]:port": the port 1-65535 (0 would make
 * the SMTP client fall back to its own default, past 65535 every attempt fails until the
 * message expires), a bracketed host an IPv6 or IPv4 address (not resolved as a name).
 */
const hostPort = z
  .string()
  .min(1)
  .superRefine((text, ctx) => {
    const m = HOST_PORT.exec(text);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `must be "host" or "host:port" ("[ipv6]:port" for IPv6), got ${JSON.stringify(text)}` });
      return;
    }
    const [, literal, port] = m;
    if (literal !== undefined && isIP(literal) === 0) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(`[${literal}]`)} is not an IP address (brackets hold an IPv6 or IPv4 address)` });
    }
    if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) {
      ctx.addIssue({ code: 'custom', message: `port ${port} is out of range (1-65535)` });
    }
  });

/** A next hop that is not found via MX: a smarthost for all mail, or the route of one domain. */
export const destinationSchema = z.strictObject({
  /** "host" or "host:port"; the host is resolved with A/AAAA (no MX lookup). Default port: `port`. */
  host: hostPort,
  /** STARTTLS policy for this destination; default `opportunistic`. */
  tls: tlsMode.optional(),
  /** Verify the server certificate (name and chain); default false, like Postfix's `encrypt` level. */
  tlsVerify: z.boolean().optional(),
  /** Connect with implicit TLS (port 465 style) instead of STARTTLS. */
  implicitTls: z.boolean().default(false),
  /** AUTH PLAIN/LOGIN credentials; sent only over TLS unless `authInsecure: true`. */
  auth: z.strictObject({ user: z.string().min(1), pass: z.string(), method: z.enum(['PLAIN', 'LOGIN']).optional() }).optional(),
  authInsecure: z.boolean().default(false),
});
export type Destination = z.output<typeof destinationSchema>;

/**
 * Maps looked up by names from DNS answers and addresses (an MX called `constructor`, a
 * domain called `__proto__`): without a prototype, only the configured keys are there.
 */
function withoutPrototype<V>(record: Record<string, V>): Record<string, V> {
  return Object.assign(Object.create(null) as Record<string, V>, record);
}

export const relayOptionsSchema = z.strictObject({
  /** Queue directory, relative to the config file's directory. */
  queueDir: z.string().min(1).default('./var/relay-queue'),
  /** SMTP port for MX deliveries (25 in production). */
  port: z.number().int().min(1).max(65535).default(25),
  /** Port override per MX host name (e.g. for tests or a local transport): `{ "mx1.dest.test": 2526 }`. */
  mxPort: z.record(z.string(), z.number().int().min(1).max(65535)).default({}).transform(withoutPrototype),
  /** Send all mail to this host instead of looking up MX records. */
  smarthost: destinationSchema.optional(),
  /** Per destination domain (lower-case) next hop, checked before `smarthost` and MX. */
  routes: z.record(z.string(), destinationSchema).default({}).transform(withoutPrototype),
  /** STARTTLS policy for MX deliveries: `opportunistic` (default), `required` or `none`. */
  tls: tlsMode.default('opportunistic'),
  /** Verify MX server certificates. Default false (opportunistic TLS is unauthenticated, RFC 7435). */
  tlsVerify: z.boolean().default(false),
  /**
   * Most MX addresses tried per delivery attempt (Postfix: smtp_mx_address_limit). Each
   * may cost `connectTimeout`: a domain whose MX hosts never answer holds a delivery slot
   * for at most this many timeouts per attempt.
   */
  mxAddressLimit: z.number().int().min(1).max(100).default(5),
  /**
   * Let MX lookups lead to loopback addresses (127.0.0.0/8, ::1). Off: an MX on loopback
   * is this host, so the mail would loop ("loops back to myself", 5.4.6). On (tests,
   * other MTAs on this host's loopback): only a loopback address at one of the gateway's
   * own listening ports is refused. Configured routes and the smarthost are never checked.
   */
  allowLoopbackMx: z.boolean().default(false),
  /** Concurrent deliveries (SMTP transactions) in total and per destination (a recipient domain, or the smarthost). */
  concurrency: z.number().int().min(1).default(20),
  perDestination: z.number().int().min(1).default(5),
  /** Most recipients per SMTP transaction (RFC 5321 §4.5.3.1.8: servers must take 100). */
  maxRecipientsPerTransaction: z.number().int().min(1).default(100),
  /** How long an idle connection is kept for reuse. */
  idleTimeout: durationSchema.default(5_000),
  /** Timeouts of the SMTP client. */
  connectTimeout: durationSchema.default(30_000),
  commandTimeout: durationSchema.default(300_000),
  retry: z
    .strictObject({
      /** Waits between attempts; the last one repeats until `maxAge`. */
      schedule: z.array(durationSchema).min(1).default([300_000, 600_000, 1_200_000, 2_400_000, 4_800_000, 9_600_000, 14_400_000]),
      /** A message still undelivered this long after it was queued is bounced (default 5 days). */
      maxAge: durationSchema.default(5 * 86_400_000),
      /** Random part of each wait, as a fraction (0.1 = up to ±10%). */
      jitter: z.number().min(0).max(1).default(0.1),
    })
    .prefault({}),
  /** Send one "delayed" DSN (RFC 3464 Action: delayed) when a message is still undelivered after this long. Off by default. */
  delayWarning: durationSchema.optional(),
  /** Where double bounces go (a bounce that could not be delivered). Without it they are held in the queue. */
  postmaster: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, { error: 'must be an address local@domain' }).optional(),
  /** A message with more `Received:` headers than this is a mail loop: bounced (5.4.6), not sent (Postfix: hopcount_limit). */
  maxHops: z.number().int().min(1).default(50),
  /** Name in EHLO; default: the gateway's hostname. */
  heloName: z.string().min(1).optional(),
  /** How often the queue directory's control requests (from `mailgate queue`) are polled. */
  controlPoll: durationSchema.default(1_000),
});

export type RelayOptions = z.output<typeof relayOptionsSchema>;
export type RelayOptionsInput = z.input<typeof relayOptionsSchema>;
