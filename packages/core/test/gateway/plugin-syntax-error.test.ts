/**
 * A plugin file that does not parse: `cannot load plugin` must say where (file:line:column),
 * not only Node's bare "Unexpected token ';'". Run through the real `mailgate check`
 * (the built CLI): under vitest, Vite imports plugin files itself, with its own parser
 * and messages, so Node's SyntaxErrors are only seen in a plain Node process.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMailgate } from '@mailgate/core/testing';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'mg-plugin-syntax-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What `mailgate check` says about a config whose only plugin is `use`. */
async function loadMessage(use: string): Promise<string> {
  writeFileSync(join(dir, 'gateway.yaml'), `plugins:\n  - use: ${JSON.stringify(use)}\n`);
  const cli = await startMailgate(['check', '-c', 'gateway.yaml'], { cwd: dir, waitFor: false });
  const exit = await cli.exited;
  expect(exit.code).not.toBe(0);
  expect(cli.stderr()).toMatch(/invalid configuration/);
  return cli.stderr();
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a plugin file with a syntax error', () => {
  it('an ES module (.mjs): the message names the file, line and column', async () => {
    writeFileSync(join(dir, 'syntax.mjs'), ["import { definePlugin } from '@mailgate/core';", '', 'const x = ;', 'export default definePlugin({ name: "x", setup() {} });', ''].join('\n'));
    const message = await loadMessage('./syntax.mjs');
    expect(message).toMatch(new RegExp(`plugins\\[0\\]\\.use: cannot load plugin "\\./syntax\\.mjs": .*\\(at ${escape(join(dir, 'syntax.mjs'))}:3:11\\)`));
  });

  it('a .js file in a "type": "module" folder', async () => {
    mkdirSync(join(dir, 'esm'), { recursive: true });
    writeFileSync(join(dir, 'esm', 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(dir, 'esm', 'bad.js'), ['export default {', '  name: "x"', '  setup() {} };', ''].join('\n'));
    const message = await loadMessage('./esm/bad.js');
    expect(message).toMatch(new RegExp(`cannot load plugin "\\./esm/bad\\.js": .*\\(at ${escape(join(dir, 'esm', 'bad.js'))}:3:3\\)`));
  });

  it('a CommonJS file (.cjs): file and line too', async () => {
    writeFileSync(join(dir, 'syntax.cjs'), ['module.exports = {};', 'const x = ;', ''].join('\n'));
    const message = await loadMessage('./syntax.cjs');
    expect(message).toMatch(new RegExp(`cannot load plugin "\\./syntax\\.cjs": .*\\(at ${escape(join(dir, 'syntax.cjs'))}:2(:11)?\\)`));
  });

  it('a SyntaxError thrown while the module runs (JSON.parse): where it was thrown', async () => {
    writeFileSync(join(dir, 'json.mjs'), ['const options = JSON.parse("{x");', 'export default options;', ''].join('\n'));
    const message = await loadMessage('./json.mjs');
    expect(message).toMatch(new RegExp(`cannot load plugin "\\./json\\.mjs": .*JSON.*\\(at ${escape(join(dir, 'json.mjs'))}:1:\\d+\\)`));
  });

  it('other load errors are reported as before, with no location added', async () => {
    writeFileSync(join(dir, 'throws.mjs'), 'throw new Error("no database configured");\n');
    const message = await loadMessage('./throws.mjs');
    expect(message).toMatch(/cannot load plugin "\.\/throws\.mjs": no database configured$/m);
  });
});
