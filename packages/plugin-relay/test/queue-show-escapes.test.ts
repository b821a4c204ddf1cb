/**
 * Finding 9 of the hostile-peer report: `mailgate queue show` wrote a queued header's
 * escape sequences to the operator's terminal (`Subject: ESC]0;PWNED BEL ESC[2J`: retitled,
 * cleared). Control characters other than tab and newline are now shown `cat -v` style
 * by show and list; `show --raw` prints the header section as it is. The real CLI.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QueueStore, newQueueId } from '../src/store.js';
import { escapeControls } from '../src/cli.js';
import { built, cliConfig, cliWorkdir, mailgate, queuedEntry } from './cli-helpers.js';
import { closedPort, useRelayFixture } from './helpers.js';

const { cleanup } = useRelayFixture({});

const HOSTILE = 'Subject: \x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[31mred\x7f\u009b1m\tok\r\n';

async function queueWithHostileHeader(): Promise<{ config: string; id: string }> {
  const dir = await cliWorkdir(cleanup);
  const config = await cliConfig(dir, await closedPort(), await closedPort());
  const store = new QueueStore(join(dir, 'queue'));
  await store.init();
  const id = newQueueId();
  const entry = queuedEntry(id, { size: 100, bodyType: '8BITMIME' }, { lastError: '451 4.0.0 \x1b[2Jbusy\u009b2J' });
  // One byte per character: 0x9b is the 8-bit CSI a terminal may take as ESC [.
  await store.add(entry, Buffer.from(`From: a@sender.test\r\n${HOSTILE}\r\nbody\r\n`, 'latin1'));
  return { config, id };
}

describe('escapeControls', () => {
  it('shows C0, DEL and C1 controls cat -v style, keeps tab, newline and text', () => {
    expect(escapeControls('a\x1b[2J\x07\x00\x7f\u009b\u0085\tb\nc é')).toBe('a^[[2J^G^@^?M-^[M-^E\tb\nc é');
  });
});

describe.skipIf(!built)('mailgate queue show/list with escape sequences in the queue', () => {
  it('show prints no control character but tab and newline; --raw prints them as they are', async () => {
    const { config, id } = await queueWithHostileHeader();
    const shown = await mailgate(['queue', 'show', id, '-c', config]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    // (the lone octet 0x9b is not UTF-8: shown as U+FFFD, never sent to the terminal as is)
    expect(shown.stdout).toContain('Subject: ^[]0;PWNED-TITLE^G^[[2J^[[31mred^?\uFFFD1m\tok');
    const raw = await mailgate(['queue', 'show', '--raw', id, '-c', config]);
    expect(raw.code).toBe(0);
    // --raw: the octets of the queued header section, byte for byte
    expect(raw.stdoutBytes.includes(Buffer.from(HOSTILE.replace('\r\n', '\n'), 'latin1'))).toBe(true);
  });

  it('show reads the header section as UTF-8 (RFC 6532), escaping a C1 control written in UTF-8', async () => {
    const dir = await cliWorkdir(cleanup);
    const config = await cliConfig(dir, await closedPort(), await closedPort());
    const store = new QueueStore(join(dir, 'queue'));
    await store.init();
    const id = newQueueId();
    await store.add(
      queuedEntry(id, { size: 10, bodyType: '8BITMIME', smtputf8: true }),
      Buffer.from('Subject: café € \u009b2J\r\n\r\nbody\r\n', 'utf8'),
    );
    const shown = await mailgate(['queue', 'show', id, '-c', config]);
    expect(shown.stdout).toContain('Subject: café € M-^[2J\n');
  });

  it('list escapes a next hop’s reply too; --raw is for show only', async () => {
    const { config } = await queueWithHostileHeader();
    const listed = await mailgate(['queue', 'list', '-c', config]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('(451 4.0.0 ^[[2JbusyM-^[2J)');
    expect(listed.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect((await mailgate(['queue', 'list', '--raw', '-c', config])).code).toBe(2);
  });
});
