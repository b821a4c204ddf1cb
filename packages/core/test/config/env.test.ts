import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { configErrorOf, yaml } from './helpers.js';

const parse = (text: string, env: Record<string, string | undefined>) => parseConfig(text, { file: 'gateway.yaml', env });
const withOf = (text: string, env: Record<string, string | undefined>) => parse(text, env).config.plugins[0]?.with;

describe('${VAR} substitution', () => {
  it('replaces variables inside string values', () => {
    const text = yaml('hostname: ${HOST}', 'smtp:', '  banner: "welcome to ${SITE} mail"');
    const { config } = parse(text, { HOST: 'mx.example.test', SITE: 'Example' });
    expect(config.hostname).toBe('mx.example.test');
    expect(config.smtp.banner).toBe('welcome to Example mail');
  });

  it('an unquoted variable is typed like a literal value; a quoted one stays a string', () => {
    const { config } = parse(yaml('listen:', '  - port: ${PORT}', 'smtp:', '  vrfy: ${VRFY}'), { PORT: '2526', VRFY: 'false' });
    expect(config.listen[0]?.port).toBe(2526);
    expect(config.smtp.vrfy).toBe(false);

    // Core numeric and boolean fields also read their exact string spelling, so quoting is harmless there...
    expect(parse(yaml('listen:', '  - port: "${PORT}"'), { PORT: '2526' }).config.listen[0]?.port).toBe(2526);
    // ...while anything else is still refused with what was found.
    const error = configErrorOf(() => parse(yaml('listen:', '  - port: "${PORT}"'), { PORT: '25x' }));
    expect(error.message).toBe('gateway.yaml:2:11: listen[0].port: expected an integer from 0 to 65535, got "25x"');
    const plugin = yaml('plugins:', '  - use: x', '    with:', '      plain: ${N}', '      quoted: "${N}"');
    expect(withOf(plugin, { N: '0123' })).toEqual({ plain: 123, quoted: '0123' });
  });

  it('${VAR:-default} uses the default when the variable is unset or empty', () => {
    const text = yaml('limits:', '  idleTimeout: ${IDLE:-45s}', '  dataTimeout: ${DATA:-2m}', '  maxErrors: ${ERR:-7}');
    const { config } = parse(text, { DATA: '', ERR: '3' });
    expect(config.limits).toMatchObject({ idleTimeout: 45_000, dataTimeout: 120_000, maxErrors: 3 });
    expect(parse(yaml('smtp: { banner: "${B:-}" }'), {}).config.smtp.banner).toBe('');
  });

  it('an unset variable without default is an error at its key path and line', () => {
    const text = yaml('plugins:', '  - use: acl', '    with:', '      secret: ${ACL_SECRET}');
    expect(configErrorOf(() => parse(text, {})).message).toBe(
      'gateway.yaml:4:15: plugins[0].with.secret: environment variable ACL_SECRET is not set (use ${ACL_SECRET:-default} to give a default)',
    );
  });

  it('every missing variable is reported, not just the first', () => {
    const error = configErrorOf(() => parse(yaml('hostname: ${A}', 'smtp: { banner: "${B}" }'), {}));
    expect(error.issues.map((i) => i.pathText)).toEqual(['hostname', 'smtp.banner']);
  });

  it('$${ is a literal ${', () => {
    const text = yaml('plugins:', '  - use: x', '    with: { template: "$${HOME} is ${WHO}", plain: $$ }');
    expect(withOf(text, { HOME: '/root', WHO: 'me' })).toEqual({ template: '${HOME} is me', plain: '$$' });
  });

  it('a value cannot inject YAML: it stays one plain string', () => {
    const evil = 'x\n  evil: 1\nplugins: []';
    const text = yaml('plugins:', '  - use: x', '    with:', '      note: ${NOTE}', '      quoted: "${NOTE}"');
    expect(withOf(text, { NOTE: evil })).toEqual({ note: evil, quoted: evil });
    expect(withOf(yaml('plugins:', '  - use: x', '    with:', '      list: ${V}'), { V: '[1, 2]' })).toEqual({ list: '[1, 2]' });
  });

  it('keys are never substituted, and variables are not expanded twice', () => {
    const text = yaml('plugins:', '  - use: x', '    with:', '      "${K}": ${V}');
    expect(withOf(text, { K: 'k', V: '${K}' })).toEqual({ '${K}': '${K}' });
  });

  it('inside { } or [ ], an unquoted ${VAR} is a YAML error with a hint to quote it', () => {
    const error = configErrorOf(() => parse(yaml('listen:', '  - { port: ${PORT} }'), { PORT: '25' }));
    expect(error.issues[0]?.line).toBe(2);
    expect(error.issues[0]?.message).toMatch(/quote values that use \$\{VAR\} inside \{ \} or \[ \]/);
    const listener = parse(yaml('listen:', '  - { port: "${PORT}", host: "${HOST:-::1}" }'), { PORT: '25' }).config.listen[0];
    expect(listener).toEqual({ host: '::1', port: 25, tls: 'none' });
  });

  it('malformed references are errors', () => {
    expect(configErrorOf(() => parse(yaml('hostname: ${HOST'), {})).message).toMatch(/^gateway\.yaml:1:11: hostname: unterminated "\$\{"/);
    expect(configErrorOf(() => parse(yaml('hostname: ${1BAD}'), {})).message).toMatch(/^gateway\.yaml:1:11: hostname: invalid variable reference "\$\{1BAD\}"/);
  });
});
