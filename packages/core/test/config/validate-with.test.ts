import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, parseConfig, sizeSchema, validateWith } from '../../src/config/index.js';
import { configErrorOf, yaml } from './helpers.js';

// What a plugin such as plugin-acl would export as the schema of its `with:` options.
const aclOptions = z.strictObject({
  localDomains: z.array(z.string().min(1)).min(1),
  relayFrom: z.array(z.string()).default([]),
  maxMessageSize: sizeSchema.optional(),
  users: z.array(z.union([z.string(), z.strictObject({ name: z.string(), password: z.string() })])).default([]),
  mode: z.discriminatedUnion('kind', [z.strictObject({ kind: z.literal('open') }), z.strictObject({ kind: z.literal('closed') })]).optional(),
});

const text = yaml(
  'hostname: mx.example.test', // 1
  'plugins:', // 2
  '  - use: "@mailgate/plugin-acl"', // 3
  '    with:', // 4
  '      localDomains: [example.test, 42]', // 5
  '      relayFrm: [127.0.0.0/8]', // 6
  '      maxMessageSize: huge', // 7
  '      users:', // 8
  '        - alice', // 9
  '        - { name: bob, pasword: x }', // 10
  '      mode: { kind: ajar }', // 11
  '  - use: ./other.js', // 12
);

describe('validateWith (plugin options)', () => {
  it('reports the plugin schema problems with full paths and lines inside with:', () => {
    const { config, source } = parseConfig(text, { file: 'gateway.yaml', env: {} });
    const error = configErrorOf(() => validateWith(aclOptions, config.plugins[0]?.with, source, ['plugins', 0, 'with']));
    expect(error.message).toBe(
      [
        'gateway.yaml:5:36: plugins[0].with.localDomains[1]: expected a string, got 42',
        'gateway.yaml:6:7: plugins[0].with.relayFrm: unknown key (did you mean "relayFrom"?)',
        'gateway.yaml:7:23: plugins[0].with.maxMessageSize: expected a size like "25MB" or a number of bytes, got "huge"',
        // Same line: ordered by column.
        'gateway.yaml:10:11: plugins[0].with.users[1].password: required',
        'gateway.yaml:10:24: plugins[0].with.users[1].pasword: unknown key (did you mean "password"?)',
        'gateway.yaml:11:21: plugins[0].with.mode.kind: expected one of "open" or "closed", got "ajar"',
      ].join('\n'),
    );
    expect(error.issues[0]?.path).toEqual(['plugins', 0, 'with', 'localDomains', 1]);
  });

  it('an absent with: is {} and a missing option points at the plugin entry', () => {
    const { config, source } = parseConfig(text, { file: 'gateway.yaml', env: {} });
    const error = configErrorOf(() => validateWith(aclOptions, config.plugins[1]?.with, source, ['plugins', 1, 'with']));
    expect(error.message).toBe('gateway.yaml:12:5: plugins[1].with.localDomains: required');
  });

  it('returns the parsed output on success, and works without a source', () => {
    expect(validateWith(aclOptions, { localDomains: ['a.test'], maxMessageSize: '1KB' }, undefined, [])).toEqual({
      localDomains: ['a.test'],
      relayFrom: [],
      maxMessageSize: 1024,
      users: [],
    });
    const error = configErrorOf(() => validateWith(aclOptions, { localDomains: [] }, undefined, ['plugins', 3, 'with']));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe('plugins[3].with.localDomains: must not be empty');
  });
});
