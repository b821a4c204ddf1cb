import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, createGateway, createLogger, gatewayFromYaml, silentLogger } from '@mailgate/core';
import { testSession } from '@mailgate/core/testing';
import acl, { aclOptionsSchema } from '../src/index.js';

const pluginPath = JSON.stringify(join(import.meta.dirname, '../src/index.ts'));

async function configErrors(withYaml: string): Promise<string> {
  const yaml = `hostname: mx.test\nplugins:\n  - use: ${pluginPath}\n    with:\n${withYaml.replace(/^/gm, '      ')}\n`;
  try {
    await gatewayFromYaml(yaml, { logger: silentLogger, file: 'gateway.yaml' });
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a configuration error');
}

describe('options validation', () => {
  it('loads from YAML and works', async () => {
    const yaml = `hostname: mx.test\nspool: { dir: ${JSON.stringify(join(tmpdir(), `acl-config-${process.pid}`))} }\nplugins:\n  - use: ${pluginPath}\n    with: { localDomains: [local.test], relayFrom: [10.0.0.0/8] }\n  - use: discard\n`;
    const gateway = await gatewayFromYaml(yaml, { logger: silentLogger });
    const s = await testSession(gateway, { remoteAddress: '192.0.2.1' });
    await s.send('EHLO c.test\r\n');
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@other.test>\r\n')).toContain('554 5.7.1 <x@other.test>: Relay access denied');
    await s.end();
    const trusted = await testSession(gateway, { remoteAddress: '10.1.2.3' });
    await trusted.send('EHLO c.test\r\n');
    expect(await trusted.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@other.test>\r\n')).toContain('250 2.1.5');
    await trusted.end();
    await gateway.close(100);
  });

  it('reports a wrong key with its line', async () => {
    expect(await configErrors('relayfrom: [10.0.0.0/8]')).toMatch(/gateway\.yaml:5.*plugins\[0\]\.with\.relayfrom.*unknown key/s);
  });

  it('reports a bad network, domain and pattern', async () => {
    expect(await configErrors('relayFrom: [10.0.0.0/33]')).toMatch(/relayFrom\[0\].*expected an IP address or a network/s);
    expect(await configErrors('localDomains: ["*.example.com"]')).toMatch(/localDomains\[0\].*expected a domain name/s);
    expect(await configErrors('rules:\n  - { sender: "/[/", action: reject }')).toMatch(/rules\[0\]\.sender: invalid regular expression \/\[\/: Unterminated character class/s);
  });

  it('refuses a condition the rule\'s stage cannot know', async () => {
    expect(await configErrors('rules:\n  - { stage: connect, recipient: x@y.test, action: reject }')).toMatch(
      /rules\[0\]\.stage.*a rule on "recipient" cannot run at stage "connect": recipient is only known from the rcpt stage on/s,
    );
    expect(await configErrors('rules:\n  - { stage: helo, user: bob, action: reject }')).toMatch(/user is only known from the mail stage on/);
  });

  it('refuses a code of the wrong class and an accept rule with a reply', async () => {
    expect(await configErrors('rules:\n  - { client: 10.0.0.1, action: reject, code: 450 }')).toMatch(/a reject rule needs a 5xx code, got 450/);
    expect(await configErrors('rules:\n  - { client: 10.0.0.1, action: tempfail, code: 550 }')).toMatch(/a tempfail rule needs a 4xx code/);
    expect(await configErrors('rules:\n  - { client: 10.0.0.1, action: accept, message: hi }')).toMatch(/an accept rule sends no reply of its own/);
    expect(await configErrors('rules:\n  - { client: 10.0.0.1, action: allow }')).toMatch(/rules\[0\]\.action/);
  });

  it('refuses bad durations and limits', async () => {
    expect(await configErrors('limits: { messageRate: { max: 0, window: 1h } }')).toMatch(/limits\.messageRate\.max/);
    expect(await configErrors('limits: { messageRate: { max: 10, window: soon } }')).toMatch(/limits\.messageRate\.window.*expected a duration/s);
    expect(await configErrors('limits: { rateBy: recipient }')).toMatch(/limits\.rateBy/);
    expect(aclOptionsSchema.parse({}).limits.rateBy).toBe('client');
  });

  it('reports a missing list file', async () => {
    expect(await configErrors('relayFrom: [{ file: ./nope.txt }]')).toMatch(/failed to start: relayFrom: .*ENOENT/);
  });

  it('infers the stage from the conditions', () => {
    const options = aclOptionsSchema.parse({
      rules: [
        { client: '10.0.0.1', action: 'reject' },
        { client: '10.0.0.1', helo: 'x', action: 'reject' },
        { sender: '<>', action: 'reject' },
        { recipient: 'a@b', client: '10.0.0.1', action: 'reject' },
        { client: '10.0.0.1', stage: 'rcpt', action: 'reject' },
      ],
    });
    expect(options.rules.map((r) => r.stage)).toEqual(['connect', 'helo', 'mail', 'rcpt', 'rcpt']);
  });

  it('the plugin is a Mailgate plugin with its schema', () => {
    expect(acl.name).toBe('@mailgate/plugin-acl');
    expect(acl.options).toBe(aclOptionsSchema);
  });
});

describe('README examples', () => {
  it('every YAML options example validates', async () => {
    const readme = await readFile(join(import.meta.dirname, '../README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(4);
    let checked = 0;
    for (const block of blocks) {
      const doc = parseYaml(block) as Record<string, unknown>;
      if ('users' in doc) continue; // a users file, with placeholder hashes
      let options: unknown = doc;
      if ('plugins' in doc) {
        const entry = (doc.plugins as Array<{ use: string; with: unknown }>).find((p) => p.use === '@mailgate/plugin-acl');
        options = entry?.with;
      }
      const result = aclOptionsSchema.safeParse(options);
      expect(result.success, `${block}\n${JSON.stringify(result.error?.issues)}`).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });
});

describe('relayFrom that opens the gateway to the internet', () => {
  it('is accepted but warned about (also by mailgate check, which runs setup)', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const gateway = createGateway({}, { logger: createLogger({ level: 'warn', format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) });
    await gateway.use(acl, { relayFrom: ['0.0.0.0/0', '::/0', '10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] });
    expect(lines.filter((l) => String(l.msg).includes('open relay')).map((l) => l.entry)).toEqual(['0.0.0.0/0', '::/0']);
    await gateway.close(0);
  });
});
