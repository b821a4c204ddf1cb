/**
 * Queued mail is private: a gateway run under the common umask 022 (which leaves
 * files 0644 and directories 0755 unless told otherwise) writes every queue file 0600
 * and makes every queue directory 0700. Directories the administrator made keep
 * their modes, with a warning. The real CLI, the real files.
 */
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { built, cliConfig, cliWorkdir, mailgate, serveWithUmask } from './cli-helpers.js';
import { closedPort, listening, message, sendMail, useRelayFixture, waitFor } from './helpers.js';

const { cleanup } = useRelayFixture({});

/** Permission bits only (the file-type bits of st_mode dropped), e.g. 0o600. */
const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const octal = (mode: number) => mode.toString(8);

describe.skipIf(!built)('queue file permissions', () => {
  it('under umask 022: queue directories 0700; body, envelope and pid file 0600', async () => {
    const dir = await cliWorkdir(cleanup);
    const port = await closedPort();
    const config = await cliConfig(dir, port, await closedPort());
    const gateway = serveWithUmask(config, '022', cleanup);
    await listening(port);
    await sendMail(port, 'alice@sender.test', ['bob@dest.test'], message('private'));
    const queue = join(dir, 'queue');
    const files = await readdir(join(queue, 'msg'));
    expect(files.map((f) => f.replace(/^.*\./, '')).sort()).toEqual(['eml', 'json']);

    const modes: Record<string, string> = {};
    for (const d of ['', 'msg', 'tmp', 'ctl']) modes[`${d}/`] = octal(await modeOf(join(queue, d)));
    for (const f of [...files.map((f) => `msg/${f}`), 'gateway.pid']) modes[f] = octal(await modeOf(join(queue, f)));
    expect(modes).toEqual({
      '/': '700',
      'msg/': '700',
      'tmp/': '700',
      'ctl/': '700',
      ...Object.fromEntries(files.map((f) => [`msg/${f}`, '600'])),
      'gateway.pid': '600',
    });
    expect(gateway.output()).not.toMatch(/open to other users/);

    // corrupt/ is made when a damaged envelope is first set aside, at the next start.
    gateway.child.kill('SIGKILL');
    await new Promise((r) => gateway.child.once('exit', r));
    await writeFile(join(queue, 'msg', 'DAMAGED0001.json'), '{}');
    serveWithUmask(config, '022', cleanup);
    await waitFor(() => readdir(join(queue, 'corrupt')).then((names) => names.includes('DAMAGED0001.json'), () => false), 15_000, 'the envelope set aside');
    expect(octal(await modeOf(join(queue, 'corrupt')))).toBe('700');
  });

  it('a queue directory the administrator made 0755 is left 0755, with a warning; what the relay makes in it is 0700/0600', async () => {
    const dir = await cliWorkdir(cleanup);
    const queue = join(dir, 'queue');
    await mkdir(queue);
    await chmod(queue, 0o755);
    const port = await closedPort();
    const config = await cliConfig(dir, port, await closedPort());
    const gateway = serveWithUmask(config, '022', cleanup);
    await listening(port);
    await sendMail(port, 'alice@sender.test', ['bob@dest.test'], message('wide'));
    const warning = await waitFor(() => gateway.output().split('\n').find((l) => l.includes('open to other users')), 10_000, 'the warning');
    expect(JSON.parse(warning)).toMatchObject({ level: 'warn', path: queue, mode: '0755' });
    expect(octal(await modeOf(queue))).toBe('755');
    expect(octal(await modeOf(join(queue, 'msg')))).toBe('700');
    for (const f of await readdir(join(queue, 'msg'))) expect(octal(await modeOf(join(queue, 'msg', f)))).toBe('600');
  });

  it('a control request `mailgate queue` writes for the running gateway is 0600', async () => {
    // This test process plays the running gateway: its pid is in gateway.pid, and it
    // answers the request after looking at it.
    const dir = await cliWorkdir(cleanup);
    const queue = join(dir, 'queue');
    for (const d of ['msg', 'tmp', 'ctl']) await mkdir(join(queue, d), { recursive: true, mode: 0o700 });
    await writeFile(join(queue, 'gateway.pid'), `${process.pid}\n`);
    const config = await cliConfig(dir, await closedPort(), await closedPort());
    const running = mailgate(['queue', 'delete', 'AAAAAAAA01', 'AAAAAAAA02', '-c', config]);
    const req = await waitFor(async () => (await readdir(join(queue, 'ctl'))).find((n) => n.endsWith('.req')), 10_000, 'the request');
    const path = join(queue, 'ctl', req);
    expect(octal(await modeOf(path))).toBe('600');
    // Both ids in one request, under an op a gateway without multi-id support refuses.
    expect(await readFile(path, 'utf8')).toBe('delete-ids AAAAAAAA01 AAAAAAAA02');
    await writeFile(path.replace(/\.req$/, '.res'), 'AAAAAAAA01 ok\nAAAAAAAA02 not found');
    await rm(path);
    const result = await running;
    expect(result.stdout).toBe('delete AAAAAAAA01: ok\n');
    expect(result.stderr).toBe('mailgate queue delete: AAAAAAAA02 not found\n');
    expect(result.code).toBe(1);
  });
});
