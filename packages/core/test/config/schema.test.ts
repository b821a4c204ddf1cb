import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { coreConfigSchema, type GatewayConfig, type GatewayConfigInput, resolveConfig } from '../../src/config/index.js';
import { configErrorOf } from './helpers.js';

const errorOf = configErrorOf;

describe('coreConfigSchema defaults', () => {
  it('an empty config is valid and every default is the safe one', () => {
    const config: GatewayConfig = resolveConfig({});
    expect(config.listen).toEqual([{ host: '127.0.0.1', port: 2525, tls: 'none' }]);
    expect(config.tls).toBeUndefined();
    expect(config.limits).toEqual({
      maxMessageSize: 25 * 1024 * 1024,
      maxRecipients: 100,
      maxConnections: 1000,
      maxConnectionsPerIp: 50,
      ipv6PrefixLength: 64,
      maxErrors: 10,
      maxCommandLineLength: 512,
      maxUnrecognizedCommands: 5,
      maxJunkCommands: 100,
      idleTimeout: 60_000,
      dataTimeout: 300_000,
    });
    expect(config.smtp).toEqual({
      banner: '',
      bareLineEndings: 'reject',
      authWithoutTls: false,
      requireTls: false,
      pipelining: true,
      chunking: true,
      smtputf8: true,
      dsn: true,
      vrfy: true,
    });
    expect(config.spool).toEqual({ dir: join(tmpdir(), 'mailgate-spool'), memoryThreshold: 128 * 1024 });
    expect(config.log).toEqual({ level: 'info', format: 'json' });
    expect(config.dns).toEqual({ timeout: 2000, retries: 2 });
    expect(config.pluginTimeout).toBe(30_000);
    expect(config.shutdownTimeout).toBe(30_000);
    expect(config.plugins).toEqual([]);
    expect(config.hostname).toMatch(/^[a-z0-9.-]+$/i);
  });

  it('fills plugin entry defaults', () => {
    const config = resolveConfig({ plugins: [{ use: './x.js' }, { use: 'y', with: { a: 1 }, timeout: '5s', enabled: false }] });
    expect(config.plugins).toEqual([
      { use: './x.js', with: {}, enabled: true },
      { use: 'y', with: { a: 1 }, timeout: 5000, enabled: false },
    ]);
  });
});

describe('listeners and TLS', () => {
  const tls = { key: '/k.pem', cert: '/c.pem' };

  it('listeners default to starttls when tls is configured', () => {
    const config = resolveConfig({ tls, listen: [{ port: 25 }, { port: 465, tls: 'implicit' }, { port: 2525, tls: 'none' }] });
    expect(config.listen.map((l) => l.tls)).toEqual(['starttls', 'implicit', 'none']);
    expect(config.tls).toEqual({ ...tls, minVersion: 'TLSv1.2' });
  });

  it('implicit (or starttls) without a top-level tls section is an error at that listener', () => {
    const error = errorOf(() => resolveConfig({ listen: [{ port: 25 }, { port: 465, tls: 'implicit' }] }));
    expect(error.issues).toHaveLength(1);
    expect(error.message).toBe('listen[1].tls: "implicit" needs the top-level tls section (key and cert)');
  });

  it('requireTls without tls is refused', () => {
    const error = errorOf(() => resolveConfig({ smtp: { requireTls: true } }));
    expect(error.issues[0]?.pathText).toBe('smtp.requireTls');
  });

  it('the same address twice is refused, but port 0 may repeat', () => {
    expect(errorOf(() => resolveConfig({ listen: [{ port: 25 }, { port: 25 }] })).message).toBe(
      'listen[1].port: 127.0.0.1:25 is already used by listen[0]',
    );
    expect(resolveConfig({ listen: [{ port: 0 }, { port: 0 }] }).listen).toHaveLength(2);
  });

  it('accepts IPv4, IPv6 and host names, rejects junk', () => {
    for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'mx.example.test']) {
      expect(resolveConfig({ listen: [{ host, port: 0 }] }).listen[0]?.host).toBe(host);
    }
    expect(errorOf(() => resolveConfig({ listen: [{ host: 'not a host', port: 0 }] })).message).toBe(
      'listen[0].host: expected an IP address or a host name, got "not a host"',
    );
  });
});

describe('resolveConfig on an in-code object', () => {
  it('validates with the same messages, without lines, and resolves paths against dir', () => {
    const config = resolveConfig(
      { limits: { maxMessageSize: '10MB', idleTimeout: 30 }, tls: { key: 'k.pem', cert: '/abs/c.pem' }, spool: { dir: 'spool' } },
      { dir: '/srv/mail' },
    );
    expect(config.limits.maxMessageSize).toBe(10 * 1024 * 1024);
    expect(config.limits.idleTimeout).toBe(30_000);
    expect(config.tls?.key).toBe(resolve('/srv/mail/k.pem'));
    expect(config.tls?.cert).toBe('/abs/c.pem');
    expect(config.spool.dir).toBe(resolve('/srv/mail/spool'));

    const error = errorOf(() => resolveConfig({ limits: { maxRecipients: 0, maxComandLineLength: 1000 }, plugins: [{}] }));
    expect(error.message).toBe(
      [
        'limits.maxRecipients: expected an integer of at least 1, got 0',
        'limits.maxComandLineLength: unknown key (did you mean "maxCommandLineLength"?)',
        'plugins[0].use: required',
      ].join('\n'),
    );
    expect(error.issues.every((i) => i.line === undefined && i.file === undefined)).toBe(true);
  });

  it('rejects a non-object', () => {
    expect(errorOf(() => resolveConfig('hello')).message).toBe('expected a mapping (key: value pairs), got "hello"');
  });

  it('limits have floors that keep the server RFC-conforming', () => {
    expect(errorOf(() => resolveConfig({ limits: { maxCommandLineLength: 100 } })).message).toBe(
      'limits.maxCommandLineLength: expected an integer of at least 512, got 100',
    );
    expect(errorOf(() => resolveConfig({ limits: { idleTimeout: '30d' } })).message).toBe(
      'limits.idleTimeout: expected a duration from 1ms to 24d, got 30d',
    );
  });

  it('refuses a banner that could inject reply lines', () => {
    expect(errorOf(() => resolveConfig({ smtp: { banner: 'hi\r\n250 fake' } })).message).toBe(
      'smtp.banner: must be a single line without control characters',
    );
  });

  it('has useful static types (checked by tsc)', () => {
    const input: GatewayConfigInput = {
      listen: [{ port: 25 }],
      limits: { maxMessageSize: '25MB', idleTimeout: 60 },
      plugins: [{ use: 'x', with: { anything: [1] } }],
    };
    // @ts-expect-error unknown keys are type errors too
    const wrong: GatewayConfigInput = { limits: { maxMesageSize: 1 } };
    void wrong;
    const config = resolveConfig(input);
    const idle: number = config.limits.idleTimeout;
    const mode: 'none' | 'starttls' | 'implicit' = config.listen[0]?.tls ?? 'none';
    const minVersion: 'TLSv1.2' | 'TLSv1.3' | undefined = config.tls?.minVersion;
    const timeout: number | undefined = config.plugins[0]?.timeout;
    expect([idle, mode, minVersion, timeout]).toEqual([60_000, 'none', undefined, undefined]);
  });

  it('exposes the schema for composition', () => {
    expect(coreConfigSchema.safeParse({ log: { level: 'debug' } }).success).toBe(true);
  });
});
