/**
 * `mailgate spam train | check | stats` through the real `mailgate` bin (needs the
 * build: `npx turbo run build`), on a temporary config and a few messages of the
 * SpamAssassin public corpus (../shared/data), with a DNS server on loopback.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DnsResolver } from '@mailgate/core';
import type { TestDnsServer } from '@mailgate/core/testing';
import { parseTrainArgs } from '../src/commands.js';
import { CORPUS_TARBALL, REPO_ROOT, run, startSpamDns } from './helpers.js';

const BIN = join(REPO_ROOT, 'packages/core/bin/mailgate.js');
const built = existsSync(join(REPO_ROOT, 'packages/core/dist/cli.js')) && existsSync(join(REPO_ROOT, 'packages/plugin-spam/dist/index.js'));
const haveCorpus = existsSync(CORPUS_TARBALL);
if (!built) console.warn('commands.test.ts: the mailgate CLI tests need the build (npx turbo run build); skipped');
if (!haveCorpus) console.warn(`commands.test.ts: ${CORPUS_TARBALL} is missing; the CLI tests are skipped`);

describe('train arguments', () => {
  it('take every path after --spam/--ham/--forget, and refuse stray ones', () => {
    expect(parseTrainArgs(['--spam', 'a', 'b', '--ham', 'c', '--spam=d', '--mbox'])).toEqual({ spam: ['a', 'b', 'd'], ham: ['c'], forget: [], mbox: true });
    expect(() => parseTrainArgs(['a'])).toThrow(/not after --spam/);
    expect(() => parseTrainArgs(['--spam', 'a', '--nope'])).toThrow(/unknown option "--nope"/);
    expect(() => parseTrainArgs([])).toThrow(/--spam PATH/);
  });
});

describe.skipIf(!built || !haveCorpus)('mailgate spam (the real CLI)', () => {
  let dir: string;
  let dns: { server: TestDnsServer; resolver: DnsResolver };
  let spamFiles: string[];
  let hamFiles: string[];
  const mailgate = (...args: string[]) => run(process.execPath, [BIN, ...args], { cwd: dir, timeoutMs: 60_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spam-cli-'));
    dns = await startSpamDns();
    const corpus = join(dir, 'corpus');
    await mkdir(corpus);
    const tar = await run('tar', ['-xzf', CORPUS_TARBALL, '-C', corpus, '--wildcards', 'spam-2/0000*', 'easy-ham-1/0000*']);
    expect(tar.code).toBe(0);
    spamFiles = (await readdir(join(corpus, 'spam-2'))).map((f) => join(corpus, 'spam-2', f));
    hamFiles = (await readdir(join(corpus, 'easy-ham-1'))).map((f) => join(corpus, 'easy-ham-1', f));
    const config = (withYaml: string) => `hostname: mx.test\ndns: { servers: ["${dns.server.address}"], timeout: 500ms, retries: 1 }\nplugins:\n  - use: "@mailgate/plugin-spam"\n    with:\n${withYaml}`;
    await writeFile(
      join(dir, 'gateway.yaml'),
      config('      dnsbl: [{ zone: zen.example, weight: 4 }]\n      bayes: { file: ./var/bayes.db, minSpam: 5, minHam: 5 }\n'),
    );
    await writeFile(join(dir, 'no-bayes.yaml'), config('      tag: 5\n'));
  });
  afterAll(async () => {
    await dns?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stats on a database not trained yet, train, train again (counted once), stats', async () => {
    const before = await mailgate('spam', 'stats', '-c', 'gateway.yaml');
    expect(before.code).toBe(0);
    expect(before.stdout).toContain('0 spam, 0 ham, 0 tokens');
    expect(before.stdout).toMatch(/not used yet: it needs at least 5 spam and 5 ham/);

    const train = await mailgate('spam', 'train', '--spam', join(dir, 'corpus/spam-2'), '--ham', ...hamFiles, '-c', 'gateway.yaml');
    expect(train.stderr).toBe('');
    expect(train.code).toBe(0);
    const total = spamFiles.length + hamFiles.length;
    expect(train.stdout).toMatch(new RegExp(`^${total} learned, 0 moved to the other label, 0 already known`));
    expect(train.stdout).toContain(`${spamFiles.length} spam, ${hamFiles.length} ham`);

    const again = await mailgate('spam', 'train', '--spam', ...spamFiles, '-c', 'gateway.yaml');
    expect(again.stdout).toMatch(new RegExp(`^0 learned, 0 moved to the other label, ${spamFiles.length} already known`));

    const after = await mailgate('spam', 'stats', '-c', 'gateway.yaml');
    expect(after.stdout).toContain(`${join(dir, 'var/bayes.db')}: ${spamFiles.length} spam, ${hamFiles.length} ham`);
    expect(after.stdout).toContain('Bayes is in use');
  });

  it('check prints every check with its points, like spamassassin -t', async () => {
    const spam = await mailgate('spam', 'check', spamFiles[0]!, '-c', 'gateway.yaml');
    expect(spam.code).toBe(0);
    expect(spam.stdout).toMatch(/^Content analysis details: +\(\d+\.\d points, 5\.0 required\)/);
    expect(spam.stdout).toMatch(/^ pts rule name +description$/m);
    expect(spam.stdout).toMatch(/^ +\d\.\d BAYES_(95|99) +Bayes spam probability is/m);
    expect(spam.stdout).toMatch(/^Score \d+\.\d: (accept|tag|reject) \(tag 5\.0, reject 15\.0\)$/m);

    const ham = await mailgate('spam', 'check', hamFiles[0]!, '-c', 'gateway.yaml');
    expect(ham.stdout).toMatch(/^ *-\d\.\d BAYES_00 +Bayes spam probability is 0 to 1%/m);

    // With the client's address, the DNS lists and SPF too; the message from standard input.
    const withIp = await run(process.execPath, [BIN, 'spam', 'check', '--ip', '127.0.0.2', '--sender', 'ann@spf-pass.example', '--helo', 'helo.example', '-', '-c', 'gateway.yaml'], {
      cwd: dir,
      input: await readFile(hamFiles[1]!, 'latin1'),
    });
    expect(withIp.code).toBe(0);
    expect(withIp.stdout).toMatch(/^ +4\.0 RCVD_IN_ZEN_EXAMPLE +client 127\.0\.0\.2 listed in zen\.example/m);
    expect(withIp.stdout).toMatch(/^ +\d\.\d SPF_FAIL +SPF: envelope sender domain spf-pass\.example does not authorize/m);
    expect(withIp.stdout).toMatch(/^ +-?0\.0 SPF_HELO_PASS /m);
  });

  it('train reads mbox files with --mbox, Maildirs (cur/ and new/, not tmp/ or .Junk), and forgets', async () => {
    const mbox = join(dir, 'ham.mbox');
    const texts = await Promise.all(hamFiles.slice(0, 3).map((f) => readFile(f, 'latin1')));
    // The corpus files start with their own "From " line: an mbox is their concatenation.
    await writeFile(mbox, texts.map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('\n'), 'latin1');
    const m = await mailgate('spam', 'train', '--mbox', '--ham', mbox, '-c', 'gateway.yaml');
    expect(m.code).toBe(0);
    expect(m.stdout).toMatch(/^0 learned, 0 moved to the other label, 3 already known/);

    const maildir = join(dir, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp', '.Junk/cur']) await mkdir(join(maildir, sub), { recursive: true });
    await writeFile(join(maildir, 'cur/1.host:2,S'), 'Subject: one\r\n\r\nfirst maildir message about gardening\r\n');
    await writeFile(join(maildir, 'new/2.host'), 'Subject: two\r\n\r\nsecond maildir message about cooking\r\n');
    await writeFile(join(maildir, 'tmp/3.host'), 'Subject: three\r\n\r\nbeing delivered\r\n');
    await writeFile(join(maildir, '.Junk/cur/4.host:2,S'), 'Subject: junk\r\n\r\nspam in the junk folder\r\n');
    await writeFile(join(maildir, 'dovecot-uidlist'), '3 V1 N2\n');
    const d = await mailgate('spam', 'train', '--ham', maildir, '-c', 'gateway.yaml');
    expect(d.stdout).toMatch(/^2 learned, /);

    const f = await mailgate('spam', 'train', '--forget', join(maildir, 'cur'), join(maildir, '.Junk'), '-c', 'gateway.yaml');
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/1 forgotten, 1 never learned/);
  });

  it('clear errors: no Bayes file configured, a missing path, bad usage, --help', async () => {
    const none = await mailgate('spam', 'train', '--spam', spamFiles[0]!, '-c', 'no-bayes.yaml');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^mailgate spam train: no Bayes database configured: add `bayes: \{ file: \.\/var\/bayes\.db \}`/);

    const missing = await mailgate('spam', 'train', '--spam', join(dir, 'no-such-dir'), '-c', 'gateway.yaml');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${join(dir, 'no-such-dir')}: no such file or directory`);

    const empty = join(dir, 'empty');
    await mkdir(empty);
    const nothing = await mailgate('spam', 'train', '--ham', empty, '-c', 'gateway.yaml');
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no messages found');

    const usage = await mailgate('spam', 'frobnicate', '-c', 'gateway.yaml');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown command "frobnicate" \(train, check or stats\)/);

    const noFile = await mailgate('spam', 'check', join(dir, 'nothing.eml'), '-c', 'gateway.yaml');
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain('nothing.eml: no such file');

    const help = await mailgate('spam', '--help', '-c', 'gateway.yaml');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: mailgate spam COMMAND/);
  });
});
