import { describe, expect, it } from 'vitest';
import { ConfigError, gatewayFromYaml, silentLogger } from '@mailgate/core';
import { maildirOptionsSchema } from '@mailgate/plugin-maildir';

function issues(options: unknown): string[] {
  const r = maildirOptionsSchema.safeParse(options);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('options schema', () => {
  it('safe, production defaults', () => {
    expect(maildirOptionsSchema.parse({ root: './mail' })).toEqual({
      root: './mail',
      path: '{root}/{domain}/{user}',
      mailboxExists: false,
      aliases: {},
      catchAll: {},
      subaddress: { separator: '+', folder: false, createFolder: false },
      normalize: { lowercase: true, stripDots: false },
      fileMode: 0o600,
      dirMode: 0o700,
      fsync: true,
      deliveredTo: true,
      returnPath: true,
      cleanup: { maxAge: 36 * 3_600_000, interval: 8 * 3_600_000 },
      queueTimeout: 60_000,
    });
  });

  it('sizes and durations in admin spelling', () => {
    const o = maildirOptionsSchema.parse({ root: '/m', quota: { bytes: '1.5GB', messages: 1000 }, cleanup: { maxAge: '2d' } });
    expect(o.quota).toEqual({ bytes: 1.5 * 1024 ** 3, messages: 1000 });
    expect(o.cleanup).toEqual({ maxAge: 2 * 86_400_000, interval: 8 * 3_600_000 });
    expect(issues({ root: '/m', quota: {} })).toEqual(['quota: a quota needs `bytes`, `messages` or both']);
  });

  it('modes are quoted octal strings', () => {
    expect(maildirOptionsSchema.parse({ root: '/m', fileMode: '0640', dirMode: '0o2770' })).toMatchObject({ fileMode: 0o640, dirMode: 0o2770 });
    expect(issues({ root: '/m', fileMode: 600 })[0]).toMatch(/^fileMode: expected a mode as a quoted octal string/);
    expect(issues({ root: '/m', fileMode: '0999' })[0]).toMatch(/^fileMode: expected an octal mode/);
    expect(issues({ root: '/m', fileMode: '4755' })[0]).toMatch(/^fileMode: mode 4755 is out of range/);
  });

  it('root or mailbox, not both', () => {
    expect(issues({})).toEqual(['root: `root` is required (or `mailbox` for single-mailbox mode)']);
    expect(issues({ mailbox: '/m', root: '/r' })).toEqual(['root: `root` cannot be used with `mailbox` (single-mailbox mode)']);
    expect(issues({ mailbox: '/m', aliases: { a: 'b' } })).toEqual(['aliases: `aliases` cannot be used with `mailbox` (single-mailbox mode)']);
    expect(issues({ mailbox: '/m', domains: '*' })).toEqual([]);
  });

  it('path templates', () => {
    expect(issues({ root: '/m', path: '{root}/{domain}/{user}/Maildir' })).toEqual([]);
    expect(issues({ root: '/m', path: '{root}/{domain}' })).toEqual(['path: the path template must contain {user} (for one shared Maildir use `mailbox`)']);
    expect(issues({ root: '/m', path: '/var/{user}' })).toEqual(['path: the path template must start with "{root}/"']);
    expect(issues({ root: '/m', path: '{root}/{local}/{user}' })).toEqual(['path: unknown placeholder {local} (use {root}, {domain}, {user})']);
    expect(issues({ root: '/m', path: '{root}/../{user}' })).toEqual(['path: the path template may not contain "." or ".." components']);
  });

  it('strict: unknown keys and bad domains are errors', () => {
    expect(issues({ root: '/m', rootDir: '/x' })[0]).toMatch(/rootDir|Unrecognized|unknown/i);
    expect(issues({ root: '/m', domains: ['not a domain'] })[0]).toMatch(/^domains\.0: expected a domain name/);
    expect(issues({ root: '/m', domains: [] })).toHaveLength(1);
    expect(issues({ root: '/m', domains: 5 })).toEqual(['domains: expected a domain, a list of domains, or "*"']);
  });

  it('one domain may be given without a list (as plugin-acl takes it)', () => {
    expect(issues({ root: '/m', domains: 'example.test' })).toEqual([]);
    expect(maildirOptionsSchema.parse({ root: '/m', domains: 'example.test' }).domains).toEqual(['example.test']);
  });
});

describe('YAML: mistakes are reported with their line before any port opens', () => {
  const yaml = (withBlock: string) => `hostname: mx.test\nplugins:\n  - use: "@mailgate/plugin-maildir"\n    with:\n${withBlock}`;

  it('an alias loop, on the alias line', async () => {
    const text = yaml('      root: /tmp/mail\n      domains: [example.test]\n      aliases:\n        sales: team\n        team: [bob, sales]\n');
    const error = await gatewayFromYaml(text, { file: '/etc/mailgate/gw.yaml', logger: silentLogger }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/gw\.yaml:8:\d+: plugins\[0\]\.with\.aliases\.sales: alias loop: sales@example\.test → team@example\.test → sales@example\.test/);
  });

  it('an unquoted mode and an unknown key', async () => {
    const text = yaml('      root: /tmp/mail\n      fileMode: 0600\n      fsnyc: false\n');
    const message = await gatewayFromYaml(text, { logger: silentLogger }).then(
      () => '',
      (e: Error) => e.message,
    );
    expect(message).toMatch(/6:\d+: plugins\[0\]\.with\.fileMode: expected a mode as a quoted octal string/);
    expect(message).toMatch(/7:\d+: plugins\[0\]\.with\.fsnyc: unknown key/);
  });

  it('a valid gateway declares its domains local (unclaimed users there get 550 5.1.1)', async () => {
    const gw = await gatewayFromYaml(yaml('      root: /tmp/mail\n      domains: [Example.TEST, other.test.]\n'), { logger: silentLogger });
    expect(gw.isLocalDomain('example.test')).toBe(true);
    expect(gw.isLocalDomain('other.test')).toBe(true);
    expect(gw.isLocalDomain('third.test')).toBe(false);
    await gw.close();
  });
});
