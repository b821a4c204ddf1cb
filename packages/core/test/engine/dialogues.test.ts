/**
 * Runs every dialogue file in ./dialogues (readable end-to-end cases, like chasquid's
 * .cmy files). Format, one item per line:
 *
 *   # comment                      (blank lines are ignored too)
 *   config {json}                  merged into the gateway config (before the dialogue)
 *   peer {json}                    the session's peer info (remoteAddress, tls, …)
 *   store <domain>… | *            a storage plugin claiming these domains (declared local)
 *   discard <domain>… | *          the built-in discard plugin
 *   local <domain>                 gw.addLocalDomain(domain), with no plugin delivering it
 *   auth <user> <password>         an auth plugin accepting exactly these credentials
 *   c: <text>                      a client line, CRLF appended; consecutive c:/c| lines go in ONE write
 *   c| <text>                      client bytes with escapes \r \n \t \0 \\ \xNN, nothing appended
 *   s: <text>                      the next server line, exactly (without its CRLF)
 *   s~ <prefix>                    the next server line starts with <prefix>
 *   s* <prefix>                    skip server lines up to and including one starting with <prefix>
 *   closed                         the server has closed the connection
 *   timeout                        the idle timer fires
 *   queued <n>                     <n> messages have reached the queue so far
 *   m: <text>                      a line of the last queued message after its Received header
 *                                  (CRLF appended; consecutive m: lines are the whole body)
 *
 * Every server line must be matched: leftovers fail the dialogue. The whole output
 * must also pass the reply well-formedness check.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { accept } from '../../src/index.js';
import { TestSession } from '../../src/testing/index.js';
import { checkReplies, discardPlugin, makeGateway, plugin, splitReceived, storePlugin, unescape, type Stored } from './helpers.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'dialogues');

interface Step {
  line: number;
  kind: string;
  arg: string;
}

function parse(text: string): Step[] {
  return text.split('\n').flatMap((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return [];
    const m = /^(c:|c\||s:|s~|s\*|m:|config|peer|store|discard|local|auth|closed|timeout|queued)(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`line ${i + 1}: cannot read ${JSON.stringify(line)}`);
    return [{ line: i + 1, kind: m[1]!, arg: m[2] ?? '' }];
  });
}

async function run(file: string): Promise<void> {
  const steps = parse(readFileSync(join(DIR, file), 'utf8'));
  let config: Record<string, unknown> = {};
  let peer: Record<string, unknown> = {};
  const setup: Array<(gw: ReturnType<typeof makeGateway>) => Promise<void>> = [];
  const stored: Stored[] = [];
  let i = 0;
  for (; i < steps.length; i++) {
    const { kind, arg } = steps[i]!;
    if (kind === 'config') config = { ...config, ...(JSON.parse(arg) as object) };
    else if (kind === 'peer') peer = { ...peer, ...(JSON.parse(arg) as object) };
    else if (kind === 'store') {
      const store = storePlugin(`store${setup.length || ''}`, { domains: arg === '*' ? '*' : arg.split(/\s+/), into: stored });
      setup.push((gw) => gw.use(store.plugin));
    } else if (kind === 'discard') setup.push((gw) => gw.use(discardPlugin, { domains: arg === '*' ? '*' : arg.split(/\s+/) }));
    else if (kind === 'local') setup.push(async (gw) => gw.addLocalDomain(arg));
    else if (kind === 'auth') {
      const [user, password] = arg.split(' ');
      setup.push((gw) => gw.use(plugin('auth', ({ tap }) => tap('auth', (_s, c) => (c.username === user && c.password === password ? accept() : undefined)))));
    } else break;
  }
  const gw = makeGateway(config);
  for (const step of setup) await step(gw);
  const s = new TestSession(gw, peer);
  await s.start();

  const pendingOut: string[] = [];
  let outputSeen = 0;
  let client: Buffer[] = [];
  let body: string[] | undefined;
  const where = (step: Step): string => `${file}:${step.line}`;

  const pull = (): void => {
    const text = s.output.slice(outputSeen);
    outputSeen = s.output.length;
    if (text === '') return;
    expect(text.endsWith('\r\n'), 'server output ends with CRLF').toBe(true);
    pendingOut.push(...text.slice(0, -2).split('\r\n'));
  };
  const flush = async (): Promise<void> => {
    if (client.length > 0) {
      s.session.feed(Buffer.concat(client));
      client = [];
      await s.session.settled();
    }
    pull();
  };
  const checkBody = (step: Step): void => {
    if (!body) return;
    const last = stored.at(-1);
    expect(last, `${where(step)}: a queued message`).toBeDefined();
    expect(splitReceived(last!.bytes).rest.toString('utf8'), `${where(step)}: queued body`).toBe(body.map((l) => `${l}\r\n`).join(''));
    body = undefined;
  };

  for (; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.kind !== 'm:') checkBody(step);
    switch (step.kind) {
      case 'c:':
        client.push(Buffer.from(`${step.arg}\r\n`, 'utf8'));
        break;
      case 'c|':
        client.push(Buffer.from(unescape(step.arg), 'latin1'));
        break;
      case 's:':
      case 's~':
      case 's*': {
        await flush();
        if (step.kind === 's*') {
          while (pendingOut.length > 0 && !pendingOut[0]!.startsWith(step.arg)) pendingOut.shift();
        }
        const got = pendingOut.shift();
        if (step.kind === 's:') expect(got, where(step)).toBe(step.arg);
        else expect(got?.startsWith(step.arg) ? step.arg : got, where(step)).toBe(step.arg);
        break;
      }
      case 'closed':
        await flush();
        expect(s.closed, `${where(step)}: closed`).toBe(true);
        break;
      case 'timeout':
        await flush();
        s.session.timeout();
        pull();
        break;
      case 'queued':
        await flush();
        expect(stored.length, `${where(step)}: messages queued`).toBe(Number(step.arg));
        break;
      case 'm:':
        await flush();
        (body ??= []).push(step.arg);
        break;
      default:
        throw new Error(`${where(step)}: "${step.kind}" must come before the dialogue`);
    }
  }
  checkBody(steps.at(-1)!);
  await flush();
  expect(pendingOut, `${file}: unmatched server lines`).toEqual([]);
  checkReplies(s.output);
  await s.end();
}

describe('dialogue files', () => {
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.dlg'))
    .sort();
  it('there are dialogue files', () => expect(files.length).toBeGreaterThanOrEqual(10));
  it.each(files)('%s', (file) => run(file));
});
