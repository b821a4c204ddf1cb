/**
 * The TapContext every tap gets after the hook's arguments: its signal is aborted when
 * the tap's own timeout fires, and for `connect` … `claim` when the client's connection
 * is gone; never for a tap that finished in time; and no AbortController exists unless
 * a tap reads `signal`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { accept, type HookName, type TapContext } from '../../src/index.js';
import { GO_AHEAD, OK_MAIL, OK_RCPT, QUEUED, makeGateway, plugin, ready, recordingLogger, sleep, storePlugin } from '../engine/helpers.js';
import { TestSession, testSession } from '../../src/testing/index.js';

/** Resolves once `signal` aborts. */
function onAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

const ALL_HOOKS: HookName[] = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'claim', 'data', 'queue', 'reset', 'quit', 'disconnect'];
const AUTH_PLAIN = `AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}\r\n`;

/** One whole session: greeting, EHLO, AUTH, a message to x@example.test, QUIT, then the peer goes away. */
async function wholeSession(gw: Parameters<typeof testSession>[0]): Promise<void> {
  const s = await testSession(gw);
  expect(await s.send('EHLO c.test\r\n')).toMatch(/^250-/);
  expect(await s.send(AUTH_PLAIN)).toMatch(/^235 /);
  expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n')).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
  expect(await s.send('Subject: t\r\n\r\nhi\r\n.\r\n')).toMatch(QUEUED);
  expect(await s.send('QUIT\r\n')).toMatch(/^221 /);
  await s.end();
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the tap signal on timeout', () => {
  it('a tap that times out sees its signal aborted with a TimeoutError saying so; the step got its 4xx', async () => {
    const gw = makeGateway();
    let signal: AbortSignal | undefined;
    let sawAbort = false;
    await gw.use(
      plugin('slow', ({ tap }) => {
        tap(
          'mail',
          async (_session, _tx, ctx) => {
            signal = ctx.signal;
            await onAbort(ctx.signal);
            sawAbort = true;
            return undefined;
          },
          { timeout: 50 },
        );
      }),
    );
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toMatch(/^451 4\.7\.1 /);
    await vi.waitFor(() => expect(sawAbort).toBe(true));
    expect(signal!.aborted).toBe(true);
    expect(signal!.reason).toBeInstanceOf(Error);
    expect(signal!.reason).toMatchObject({ name: 'TimeoutError', message: 'timed out after 50 ms' });
  });

  it('a tap that first reads its signal after its timeout fired gets one already aborted', async () => {
    const gw = makeGateway();
    let late: AbortSignal | undefined;
    await gw.use(
      plugin('late', ({ tap }) => {
        tap(
          'rcpt',
          async (_session, _tx, _rcpt, ctx) => {
            await sleep(80);
            late = ctx.signal;
            return undefined;
          },
          { timeout: 20 },
        );
      }),
    );
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n')).toMatch(/^250 [^\r]*\r\n450 4\.7\.1 /);
    await vi.waitFor(() => expect(late).toBeDefined());
    expect(late!.aborted).toBe(true);
    expect(late!.reason).toMatchObject({ name: 'TimeoutError', message: 'timed out after 20 ms' });
  });

  it('a tap that finishes in time never sees an abort, at any hook, sync or async, read during or after the call', async () => {
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    const during: Array<[HookName, AbortSignal]> = [];
    const after: Array<[HookName, TapContext]> = [];
    await gw.use(
      plugin('observer', ({ tap }) => {
        for (const hook of ALL_HOOKS) {
          const sync = (...args: unknown[]) => {
            const ctx = args.at(-1) as TapContext;
            during.push([hook, ctx.signal]);
            after.push([hook, ctx]);
            return hook === 'auth' ? accept() : undefined;
          };
          const async = async (...args: unknown[]) => {
            const ctx = args.at(-1) as TapContext;
            during.push([hook, ctx.signal]);
            await sleep(1);
            after.push([hook, ctx]);
            return undefined;
          };
          // timeouts far above a 1 ms tap, so that a busy machine cannot make one fire
          tap(hook, sync as never, { timeout: 300 });
          if (hook !== 'auth') tap(hook, async as never, { timeout: 300 });
        }
      }),
    );
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    await wholeSession(gw);
    await sleep(350); // past every timeout
    expect(new Set(during.map(([hook]) => hook))).toEqual(new Set(ALL_HOOKS));
    expect(during.filter(([, signal]) => signal.aborted)).toEqual([]);
    expect(after.filter(([, ctx]) => ctx.signal.aborted)).toEqual([]);
  });
});

describe('the tap signal when the client goes away', () => {
  it('a rcpt tap still running when the connection is gone is aborted ("session ended"); disconnect comes after it', async () => {
    const { logger, lines } = recordingLogger('debug');
    const gw = makeGateway({}, logger);
    const order: string[] = [];
    let signal: AbortSignal | undefined;
    await gw.use(
      plugin('lookup', ({ tap }) => {
        tap(
          'rcpt',
          async (_session, _tx, _rcpt, ctx) => {
            signal = ctx.signal;
            order.push('rcpt start');
            await onAbort(ctx.signal); // e.g. a DNS lookup that honours the signal
            order.push('rcpt aborted');
            ctx.signal.throwIfAborted();
            return undefined;
          },
          { timeout: 10_000 },
        );
        tap('disconnect', () => void order.push('disconnect'));
      }),
    );
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
    s.session.feed(Buffer.from('RCPT TO:<x@example.test>\r\n'));
    await sleep(10);
    const started = Date.now();
    await s.end(); // the peer is gone
    expect(Date.now() - started).toBeLessThan(2_000); // not the tap's 10 s timeout
    expect(order).toEqual(['rcpt start', 'rcpt aborted', 'disconnect']);
    expect(signal!.reason).toBeInstanceOf(Error);
    expect(signal!.reason).toMatchObject({ name: 'AbortError', message: 'session ended' });
    // Giving up because the client left is not a plugin failure: debug, not warn, and no error counted.
    const records = lines.map((l) => JSON.parse(l) as { level: string; msg: string; plugin?: string });
    expect(records.filter((r) => r.plugin === 'lookup').map((r) => [r.level, r.msg])).toEqual([['debug', 'plugin aborted']]);
    expect(gw.stats.get('lookup\u0000rcpt')).toMatchObject({ calls: 1, errors: 0 });
  });

  it('a connect tap is aborted too, and a claim tap that starts after the connection is gone gets an aborted signal', async () => {
    const gw = makeGateway();
    let connectSignal: AbortSignal | undefined;
    let claimSaw: boolean | undefined;
    await gw.use(
      plugin('checks', ({ tap }) => {
        tap('connect', async (_session, { signal }) => {
          if (connectSignal) return undefined; // only the first session's greeting hangs
          connectSignal = signal;
          await onAbort(signal);
          return undefined;
        });
        tap('rcpt', async () => {
          await sleep(50); // does not look at its signal
          return undefined;
        });
        tap('claim', (_session, _tx, _rcpt, { signal }) => {
          claimSaw = signal.aborted;
          return undefined;
        });
      }),
    );
    // connect: the session ends while the greeting is still being decided
    const early = new TestSession(gw);
    const starting = early.start();
    await sleep(10);
    await early.end();
    await starting;
    expect(connectSignal?.aborted).toBe(true);
    expect(connectSignal?.reason).toMatchObject({ name: 'AbortError', message: 'session ended' });

    // claim: rcpt is still deciding when the peer goes away; claim runs after it
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n');
    s.session.feed(Buffer.from('RCPT TO:<x@example.test>\r\n'));
    await sleep(10);
    await s.end();
    expect(claimSaw).toBe(true);
  });

  it('data and queue taps are not aborted when the client leaves: a message received whole is finished', async () => {
    const gw = makeGateway();
    const signals: AbortSignal[] = [];
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(
      plugin('slow-check', ({ tap }) => {
        tap('data', async (_session, _tx, { signal }) => {
          signals.push(signal);
          await sleep(30);
          return undefined;
        });
        tap('queue', async (_session, _tx, { signal }) => {
          signals.push(signal);
          await sleep(30);
          return undefined;
        });
      }),
    );
    await gw.use(store.plugin);
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n')).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    s.session.feed(Buffer.from('Subject: t\r\n\r\nhi\r\n.\r\n'));
    await sleep(10); // the data tap is running
    await s.end();
    expect(signals).toHaveLength(2);
    expect(signals.filter((signal) => signal.aborted)).toEqual([]);
    expect(store.stored).toHaveLength(1);
  });
});

describe('the tap context costs nothing unless used', () => {
  it('taps that never read signal create no AbortController, even when one times out; the first read creates one', async () => {
    let created = 0;
    const Real = globalThis.AbortController;
    vi.stubGlobal(
      'AbortController',
      class CountingAbortController extends Real {
        constructor() {
          super();
          created++;
        }
      },
    );
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    const contexts: TapContext[] = [];
    await gw.use(
      plugin('quiet', ({ tap }) => {
        for (const hook of ALL_HOOKS) {
          tap(hook, ((...args: unknown[]) => {
            contexts.push(args.at(-1) as TapContext);
            return hook === 'auth' ? accept() : undefined;
          }) as never);
        }
        // A tap that times out without ever reading its signal.
        tap('quit', () => sleep(100), { timeout: 10 });
      }),
    );
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    await wholeSession(gw);
    expect(contexts.length).toBeGreaterThanOrEqual(ALL_HOOKS.length);
    expect(created).toBe(0);
    const signal = contexts[0]!.signal;
    expect(created).toBe(1);
    expect(signal.aborted).toBe(false);
  });
});

describe('the embedding API', () => {
  it('taps added with gateway.hooks.x.tap / tapPromise get the context too', async () => {
    const gw = makeGateway();
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    let timedOut: AbortSignal | undefined;
    let rcptContext: TapContext | undefined;
    let first = true;
    gw.hooks.mail.tapPromise({ name: 'embedded', timeout: 30 }, async (_session, _tx, { signal }) => {
      if (!first) return undefined;
      first = false;
      timedOut = signal;
      await onAbort(signal);
      return undefined;
    });
    gw.hooks.rcpt.tap('embedded-sync', (_session, _tx, _rcpt, ctx) => {
      rcptContext = ctx;
      return undefined;
    });
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toMatch(/^451 /);
    expect(timedOut?.reason).toMatchObject({ name: 'TimeoutError', message: 'timed out after 30 ms' });
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n')).toBe(OK_MAIL + OK_RCPT);
    expect(rcptContext?.signal).toBeInstanceOf(AbortSignal);
    expect(rcptContext?.signal.aborted).toBe(false);
  });
});
