import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, formatIssues, loadConfigFile, parseConfig } from '../../src/config/index.js';
import { configErrorOf, yaml } from './helpers.js';

const file = 'gateway.yaml';
const parse = (text: string) => parseConfig(text, { file, env: {} });
const messageOf = (text: string) => configErrorOf(() => parse(text)).message;

describe('parseConfig: valid files', () => {
  it('an empty file (or only comments) is a valid config with all defaults', () => {
    for (const text of ['', '\n', '# nothing configured yet\n']) {
      const { config } = parse(text);
      expect(config.listen).toEqual([{ host: '127.0.0.1', port: 2525, tls: 'none' }]);
      expect(config.limits.maxRecipients).toBe(100);
    }
  });

  it('a section whose entries are all commented out means its defaults', () => {
    const { config } = parse(yaml('limits:', '  # maxRecipients: 10', 'plugins:', 'tls:'));
    expect(config.limits.maxRecipients).toBe(100);
    expect(config.plugins).toEqual([]);
    expect(config.tls).toBeUndefined();
  });

  it('parses the DESIGN.md example', () => {
    const { config } = parse(
      yaml(
        'hostname: mx.example.test',
        'listen:',
        '  - { host: 127.0.0.1, port: 2525 }',
        '  - { host: 127.0.0.1, port: 2465, tls: implicit }',
        'tls: { key: ./certs/key.pem, cert: ./certs/cert.pem }',
        'limits: { maxMessageSize: 25MB, maxRecipients: 100, idleTimeout: 60s }',
        'plugins:',
        '  - use: "@mailgate/plugin-acl"',
        '    with: { localDomains: [example.test], relayFrom: [127.0.0.0/8] }',
        '  - use: ./plugins/my-plugin.js',
      ),
    );
    expect(config.listen.map((l) => l.tls)).toEqual(['starttls', 'implicit']);
    expect(config.limits.maxMessageSize).toBe(25 * 1024 * 1024);
    expect(config.plugins[0]?.with).toEqual({ localDomains: ['example.test'], relayFrom: ['127.0.0.0/8'] });
    expect(config.plugins[1]).toEqual({ use: './plugins/my-plugin.js', with: {}, enabled: true });
  });
});

describe('parseConfig: error messages carry file:line:column, path, expected and found', () => {
  it('unknown key with a suggestion, pointing at the key', () => {
    const text = yaml(
      'hostname: mx.example.test', // 1
      'listen:', // 2
      '  - host: 127.0.0.1', // 3
      '    port: 2525', // 4
      'limits:', // 5
      '    maxRecipients: 50', // 6
      '    maxMesageSize: 25MB', // 7
    );
    expect(messageOf(text)).toBe('gateway.yaml:7:5: limits.maxMesageSize: unknown key (did you mean "maxMessageSize"?)');
  });

  it('no suggestion when nothing is close', () => {
    expect(messageOf(yaml('limits:', '  frobnicate: 1'))).toBe('gateway.yaml:2:3: limits.frobnicate: unknown key');
    expect(messageOf(yaml('tsl: {}'))).toBe('gateway.yaml:1:1: tsl: unknown key (did you mean "tls"?)');
  });

  it('bad duration, pointing at the value', () => {
    const text = yaml(
      'hostname: mx.example.test', // 1
      'limits:', // 2
      '  maxRecipients:   50', // 3
      '  maxConnections:  100', // 4
      '  maxErrors:       10', // 5
      '  maxMessageSize:  25MB', // 6
      '  pluginsBelow:    []', // 7 (unknown, reported too)
      '  dataTimeout:     5m', // 8
      '  idleTimeout:      sixty', // 9
    );
    const error = configErrorOf(() => parse(text));
    expect(error.issues.map((i) => `${i.line}:${i.column}`)).toEqual(['7:3', '9:21']);
    expect(error.message.split('\n')[1]).toBe('gateway.yaml:9:21: limits.idleTimeout: expected a duration like "60s" or "5m", got "sixty"');
  });

  it('port out of range', () => {
    const text = yaml('listen:', '  - host: 127.0.0.1', '    port: 70000');
    expect(messageOf(text)).toBe('gateway.yaml:3:11: listen[0].port: expected an integer from 0 to 65535, got 70000');
  });

  it('a missing key points at the mapping that should hold it', () => {
    const text = yaml(
      'hostname: mx.example.test', // 1
      'limits:', // 2
      '  maxRecipients: 10', // 3
      'log:', // 4
      '  level: info', // 5
      '# plugins, in order', // 6
      'plugins:', // 7
      '    - use: "@mailgate/plugin-acl"', // 8
      '      with:', // 9
      '        localDomains: [example.test]', // 10
      '', // 11
      '    - with: { root: ./var/maildir }', // 12
    );
    expect(messageOf(text)).toBe('gateway.yaml:12:7: plugins[1].use: required');
  });

  it('all the examples at once, in file order, one per line', () => {
    const text = yaml(
      'listen:', // 1
      '  - host: 127.0.0.1', // 2
      '    port: 70000', // 3
      'hostname: mx.example.test', // 4
      'limits:', // 5
      '    maxRecipients: 50', // 6
      '    maxMesageSize: 25MB', // 7
      '    maxErrors: 10', // 8
      '    idleTimeout:    sixty', // 9
      'plugins:', // 10
      '    - use: "@mailgate/plugin-acl"', // 11
      '    - with: { root: ./var }', // 12
    );
    const error = configErrorOf(() => parse(text));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.file).toBe('gateway.yaml');
    expect(error.message).toBe(
      [
        'gateway.yaml:3:11: listen[0].port: expected an integer from 0 to 65535, got 70000',
        'gateway.yaml:7:5: limits.maxMesageSize: unknown key (did you mean "maxMessageSize"?)',
        'gateway.yaml:9:21: limits.idleTimeout: expected a duration like "60s" or "5m", got "sixty"',
        'gateway.yaml:12:7: plugins[1].use: required',
      ].join('\n'),
    );
    expect(error.issues[3]).toEqual({
      path: ['plugins', 1, 'use'],
      pathText: 'plugins[1].use',
      message: 'required',
      line: 12,
      column: 7,
      file: 'gateway.yaml',
    });
    expect(formatIssues(error.issues)).toBe(error.message);
  });

  it('implicit TLS without a tls section points at the listener tls key value', () => {
    const text = yaml('listen:', '  - { port: 2525 }', '  - port: 2465', '    tls: implicit');
    expect(messageOf(text)).toBe('gateway.yaml:4:10: listen[1].tls: "implicit" needs the top-level tls section (key and cert)');
  });

  it('wrong types and enum values say what was expected', () => {
    const text = yaml('smtp:', '  vrfy: yes', 'log: { level: inf }', 'limits:', '  maxRecipients:');
    expect(messageOf(text)).toBe(
      [
        'gateway.yaml:2:9: smtp.vrfy: expected true or false, got "yes"',
        'gateway.yaml:3:15: log.level: expected one of "trace", "debug", "info", "warn", "error" or "silent", got "inf" (did you mean "info"?)',
        // An empty value points at its key: there is nothing else to point at.
        'gateway.yaml:5:3: limits.maxRecipients: expected an integer of at least 1, got an empty value',
      ].join('\n'),
    );
  });

  it('a top-level list is refused', () => {
    expect(messageOf(yaml('- a'))).toBe('gateway.yaml:1:1: expected a mapping (key: value pairs), got a list');
  });

  it('without a file name, positions are still given', () => {
    expect(configErrorOf(() => parseConfig(yaml('limits:', '  maxErrors: x'), { env: {} })).message).toBe(
      '2:14: limits.maxErrors: expected an integer of at least 1, got "x"',
    );
  });
});

describe('parseConfig: YAML syntax', () => {
  it('a duplicate key is an error at the second occurrence', () => {
    const text = yaml('limits:', '  maxRecipients: 10', '  maxErrors: 3', '  maxRecipients: 1000');
    const error = configErrorOf(() => parse(text));
    expect(error.message).toBe('gateway.yaml:4:3: duplicate key (each key may appear only once in a mapping)');
  });

  it('bad indentation is reported with line and column', () => {
    const error = configErrorOf(() => parse(yaml('limits:', '  maxRecipients: 10', ' maxErrors: 3')));
    expect(error.issues[0]).toMatchObject({ file, line: 3 });
    expect(error.issues[0]?.message).toMatch(/^invalid YAML: /);
  });

  it('an unclosed flow mapping is reported', () => {
    const error = configErrorOf(() => parse(yaml('limits: { maxRecipients: 10', 'log: {}')));
    expect(error.issues[0]?.line).toBeGreaterThan(0);
    expect(error.issues[0]?.column).toBeGreaterThan(0);
  });

  it('several documents in one file are refused', () => {
    expect(messageOf(yaml('log: {}', '---', 'log: {}'))).toMatch(/^gateway\.yaml:\d+:\d+: invalid YAML: source contains multiple documents/);
  });

  it('alias bombs are stopped', () => {
    const bomb = yaml(
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    );
    expect(messageOf(bomb)).toMatch(/invalid YAML: .*alias/i);
  });
});

describe('paths resolve against the config file directory', () => {
  it('relative paths are resolved, absolute ones kept', () => {
    const text = yaml('tls: { key: ./certs/key.pem, cert: /etc/ssl/cert.pem }', 'spool: { dir: var/spool }');
    const { config, source } = parseConfig(text, { file: '/etc/mailgate/gateway.yaml', env: {} });
    expect(source.dir).toBe(resolve('/etc/mailgate'));
    expect(config.tls?.key).toBe(resolve('/etc/mailgate/certs/key.pem'));
    expect(config.tls?.cert).toBe('/etc/ssl/cert.pem');
    expect(config.spool.dir).toBe(resolve('/etc/mailgate/var/spool'));
  });

  it('without a file, against the working directory', () => {
    const { config, source } = parseConfig(yaml('spool: { dir: spool }'), { env: {} });
    expect(source.dir).toBe(process.cwd());
    expect(config.spool.dir).toBe(resolve('spool'));
  });
});

describe('overrides', () => {
  it('merge over the file and lose the file position', () => {
    const text = yaml('listen:', '  - port: 2525', 'limits:', '  maxRecipients: 10');
    const { config } = parseConfig(text, { file, env: {}, overrides: { limits: { maxErrors: 3 } } });
    expect(config.limits).toMatchObject({ maxRecipients: 10, maxErrors: 3 });

    const error = configErrorOf(() => parseConfig(text, { file, env: {}, overrides: { listen: [{ port: 99999 }] } }));
    expect(error.message).toBe('listen[0].port: expected an integer from 0 to 65535, got 99999 (from overrides)');
  });

  it('do not turn a file that is not a mapping into one (the CLI always passes overrides)', () => {
    for (const [text, got] of [['- a', 'a list'], ['true', 'true']] as const) {
      expect(configErrorOf(() => parseConfig(yaml(text), { file, env: {}, overrides: {} })).message).toBe(`gateway.yaml:1:1: expected a mapping (key: value pairs), got ${got}`);
    }
  });
});

describe('loadConfigFile', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('reads the file, reports errors under the name given, resolves paths next to it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailgate-config-'));
    dirs.push(dir);
    await mkdir(join(dir, 'etc'));
    const path = join(dir, 'etc', 'gateway.yaml');
    await writeFile(path, yaml('spool:', '  dir: ../spool', 'limits:', '  maxErrors: ${ERRORS}'));
    const { config, source } = await loadConfigFile(path, { env: { ERRORS: '4' } });
    expect(config.spool.dir).toBe(join(dir, 'spool'));
    expect(config.limits.maxErrors).toBe(4);
    expect(source.file).toBe(path);

    await expect(loadConfigFile(path, { env: {} })).rejects.toThrow(`${path}:4:14: limits.maxErrors: environment variable ERRORS is not set`);
  });

  it('a missing file is a ConfigError naming it', async () => {
    const error = await loadConfigFile('/nonexistent/gateway.yaml').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe('/nonexistent/gateway.yaml: cannot read the configuration file: file not found');
  });
});
