/**
 * What the core checks of a plugin when it is added, so that a plugin author's mistake
 * is an error at start (with its place in the YAML) rather than a silent surprise: the
 * `core` versions it was written for, options given to a plugin that takes none, a tap
 * of a hook that does not exist. And what a failing tap leaves in the log to find the
 * bug: its session, transaction and stack.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, createGateway, createLogger, definePlugin, gatewayFromYaml, silentLogger } from '@mailgate/core';
import { testSession } from '@mailgate/core/testing';
import { coreRangeAccepts, coreVersion } from '../../src/core-version.js';

const dir = mkdtempSync(join(tmpdir(), 'mg-plugin-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A plugin file (plain ESM, marked the way definePlugin marks a plugin). */
function pluginFile(name: string, fields: string, setup = ''): string {
  const file = join(dir, `${name}.js`);
  writeFileSync(
    file,
    `const plugin = { name: ${JSON.stringify(name)}, ${fields} setup(ctx) { ${setup} } };
Object.defineProperty(plugin, Symbol.for('mailgate.plugin'), { value: true });
export default Object.freeze(plugin);
`,
  );
  return `./${name}.js`;
}

async function yamlError(yaml: string): Promise<string> {
  const error = await gatewayFromYaml(yaml, { file: join(dir, 'gw.yaml'), logger: silentLogger }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
}

describe('coreRangeAccepts', () => {
  it.each([
    ['0.x', '0.1.0', true],
    ['0', '0.9.3', true],
    ['0.*', '0.1.0', true],
    ['1', '0.1.0', false],
    ['1.x || 0.x', '0.1.0', true],
    ['2 || 3', '0.1.0', false],
    ['^0.1', '0.1.7', true],
    ['^0.1', '0.2.0', false],
    ['^0.1.2', '0.1.1', false],
    ['^1.2', '1.9.0', true],
    ['^1.2', '1.1.0', false],
    ['^1.2', '2.0.0', false],
    ['^0', '0.4.0', true],
    ['^0.0.3', '0.0.5', false],
    ['>=0.1.0', '0.1.0', true],
    ['>=1', '0.1.0', false],
    ['0.1.x', '0.1.9', true],
    ['>=0.1.0 <2', '1.5.0', true],
  ] as const)('%s accepts %s: %s', (range, version, expected) => {
    expect(coreRangeAccepts(range, version)).toBe(expected);
  });

  it.each(['latest', '1.2.3.4', '', 'version one'])('%j is not a range it reads', (range) => {
    expect(coreRangeAccepts(range, '0.1.0')).toBeUndefined();
  });
});

describe('adding a plugin', () => {
  it('written for another major of the core: refused at its use: line', async () => {
    const use = pluginFile('future', `core: '2',`);
    const message = await yamlError(`plugins:\n  - use: ${use}\n`);
    expect(message).toBe(`${join(dir, 'gw.yaml')}:2:10: plugins[0].use: plugin "future" was written for @mailgate/core 2; this is @mailgate/core ${coreVersion()}`);
  });

  it('a core field that is not a range: said so', async () => {
    const use = pluginFile('vague', `core: 'latest',`);
    expect(await yamlError(`plugins:\n  - use: ${use}\n`)).toContain('plugin "vague" declares core: "latest", which is not a range of @mailgate/core versions');
  });

  it('written for this core: loads', async () => {
    const use = pluginFile('current', `core: '0.x',`);
    const gateway = await gatewayFromYaml(`plugins:\n  - use: ${use}\n`, { file: join(dir, 'gw.yaml'), logger: silentLogger });
    await gateway.close(0);
  });

  it('options for a plugin that takes none: an error at its with: (they would be ignored)', async () => {
    const use = pluginFile('plain', '');
    expect(await yamlError(`plugins:\n  - use: ${use}\n    with: { foo: 1 }\n`)).toMatch(/gw\.yaml:3:\d+: plugins\[0\]\.with: plugin "plain" takes no options$/);
    // nothing, or an empty mapping, is fine
    for (const yaml of [`plugins:\n  - use: ${use}\n`, `plugins:\n  - use: ${use}\n    with: {}\n`]) {
      const gateway = await gatewayFromYaml(yaml, { file: join(dir, 'gw.yaml'), logger: silentLogger });
      await gateway.close(0);
    }
    const embedded = createGateway({}, { logger: silentLogger });
    await expect(embedded.use(definePlugin({ name: 'plain', setup() {} }), { foo: 1 } as never)).rejects.toThrow('use(): plugin "plain" takes no options');
  });

  it('reported with the core config\'s own mistakes, in one run', async () => {
    const future = pluginFile('future2', `core: '2',`);
    const plain = pluginFile('plain2', '');
    const message = await yamlError(`limits:\n  maxRecipents: 5\nplugins:\n  - use: ${future}\n  - use: ${plain}\n    with: { foo: 1 }\n`);
    expect(message.split('\n')).toEqual([
      expect.stringMatching(/gw\.yaml:2:3: limits\.maxRecipents: unknown key/),
      expect.stringMatching(/gw\.yaml:4:\d+: plugins\[0\]\.use: plugin "future2" was written for @mailgate\/core 2/),
      expect.stringMatching(/gw\.yaml:6:\d+: plugins\[1\]\.with: plugin "plain2" takes no options$/),
    ]);
  });

  it('a tap of a hook that does not exist: named, with the hooks there are', async () => {
    const use = pluginFile('typo', '', `ctx.tap('rcpt_to', () => undefined);`);
    const message = await yamlError(`plugins:\n  - use: ${use}\n`);
    expect(message).toContain('plugin "typo": tap(): no hook named "rcpt_to" (hooks: connect, helo, auth, mail, rcpt, claim, data, queue');
  });
});

describe('a tap that fails', () => {
  it('is logged with its session, transaction and stack', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const gateway = createGateway({}, { logger: createLogger({ level: 'warn', format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) });
    await gateway.use(
      definePlugin({
        name: 'buggy',
        setup({ tap }) {
          tap('rcpt', () => {
            throw new TypeError('cannot read the list');
          });
        },
      }),
    );
    const s = await testSession(gateway);
    await s.send('HELO client.test\r\nMAIL FROM:<a@client.test>\r\n');
    expect(await s.send('RCPT TO:<b@example.test>\r\n')).toMatch(/^450 /);
    const line = lines.find((l) => l.msg === 'plugin failed')!;
    expect(line).toMatchObject({ plugin: 'buggy', hook: 'rcpt', session: s.session.id, error: { message: 'cannot read the list' } });
    expect(line.tx).toMatch(/^\S+$/);
    expect(line.stack).toMatch(/^TypeError: cannot read the list\n\s+at .*plugin-contract\.test\.ts/);
    await gateway.close(0);
  });
});
