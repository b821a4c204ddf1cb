import { ConfigError, gatewayFromYaml, silentLogger } from '@mailgate/core';
import { describe, expect, it } from 'vitest';

describe('plugin loading from YAML', () => {
  it('refuses URLs as plugins (a data: URL is never imported, so never run)', async () => {
    const marker = `mailgateDataUrlRan${Date.now()}`;
    const code = encodeURIComponent(`globalThis.${marker} = true; export default {};`);
    const yaml = `plugins:\n  - use: "data:text/javascript,${code}"\n  - use: node:fs\n`;
    const error = await gatewayFromYaml(yaml, { file: 'gw.yaml', logger: silentLogger }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/gw\.yaml:2:\d+: plugins\[0\]\.use: "data:text\/javascript,.*" is not a package name or a path/);
    expect((error as ConfigError).message).toMatch(/gw\.yaml:3:\d+: plugins\[1\]\.use: "node:fs" is not a package name or a path/);
    expect((globalThis as Record<string, unknown>)[marker]).toBeUndefined();
  });

  it('names the built-ins when a plugin cannot be found', async () => {
    const error = await gatewayFromYaml('plugins:\n  - use: no-such-mailgate-plugin\n', { file: 'gw.yaml', logger: silentLogger }).catch((e: unknown) => e);
    expect((error as ConfigError).message).toMatch(/gw\.yaml:2:\d+: plugins\[0\]\.use: cannot find plugin "no-such-mailgate-plugin": not a built-in \(discard\)/);
  });

  it('suggests the published plugin a misspelt or unscoped name meant', async () => {
    const yaml = 'plugins:\n  - use: "@mailgate/plugin-relya"\n  - use: plugin-acl\n  - use: discrad\n';
    const error = await gatewayFromYaml(yaml, { file: 'gw.yaml', logger: silentLogger }).catch((e: unknown) => e);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/plugins\[0\]\.use: cannot find plugin "@mailgate\/plugin-relya" \(did you mean "@mailgate\/plugin-relay"\?\)/);
    expect(message).toMatch(/plugins\[1\]\.use: cannot find plugin "plugin-acl" \(did you mean "@mailgate\/plugin-acl"\?\)/);
    expect(message).toMatch(/plugins\[2\]\.use: cannot find plugin "discrad" \(did you mean "discard"\?\)/);
  });

  it("reports the core's and the plugins' problems together, in file order", async () => {
    const yaml = ['limits:', '  maxRecipents: 5', 'plugins:', '  - use: discard', '    with: { domain: [example.test] }', '  - use: no-such-plugin'].join('\n');
    const error = await gatewayFromYaml(yaml, { file: 'gw.yaml', logger: silentLogger }).catch((e: unknown) => e);
    expect((error as ConfigError).message.split('\n')).toEqual([
      expect.stringMatching(/^gw\.yaml:2:3: limits\.maxRecipents: unknown key/),
      expect.stringMatching(/^gw\.yaml:5:\d+: plugins\[0\]\.with\.domain: unknown key.*domains/),
      expect.stringMatching(/^gw\.yaml:6:\d+: plugins\[1\]\.use: cannot find plugin "no-such-plugin"/),
    ]);
  });
});
