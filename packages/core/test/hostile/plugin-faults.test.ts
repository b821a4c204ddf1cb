/**
 * Hostile plugins: taps that throw (Errors and non-Error values), never settle, return
 * garbage or forged verdicts, or hand the core values it does not expect. The contract
 * (docs/plugins.md): "A tap that throws, times out or returns something that is not a
 * verdict becomes a temporary failure (4xx) for that step ... It never crashes the
 * gateway and never turns into an accept."
 *
 * Everything here runs on bytes (testSession) or on a loopback socket, in-process. An
 * unhandled promise rejection is what crashes a Node 20 process by default
 * (--unhandled-rejections=throw), so the tests that look for one capture it
 * instead of letting the test runner die; cli-process.test.ts shows the real crash.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  accept,
  createGateway,
  createLogger,
  reject,
  silentLogger,
  tempfail,
  type Gateway,
  type GatewayConfigInput,
  type Logger,
  type Verdict,
} from '@mailgate/core';
import { startTestGateway, testSession, type TestSession } from '@mailgate/core/testing';
import { capture, cleanupTemps, plugin, RawClient, sleep, tempDir, until } from './helpers.js';

afterAll(() => cleanupTemps());

function gateway(config: GatewayConfigInput = {}, logger: Logger = silentLogger): Gateway {
  return createGateway({ hostname: 'mx.test', spool: { dir: `${tempDir()}/spool` }, ...config }, { logger });
}

/** Run `fn` with this process's unhandled-rejection handlers replaced by a recorder; returns what was recorded. */
async function unhandledRejections(fn: () => Promise<void>): Promise<unknown[]> {
  const saved = process.listeners('unhandledRejection');
  process.removeAllListeners('unhandledRejection');
  const seen: unknown[] = [];
  const recorder = (reason: unknown) => void seen.push(reason);
  process.on('unhandledRejection', recorder);
  try {
    await fn();
    await sleep(50);
  } finally {
    process.off('unhandledRejection', recorder);
    for (const l of saved) process.on('unhandledRejection', l as (...args: unknown[]) => void);
  }
  return seen;
}

/** Feed bytes and wait (bounded) for the session to answer; returns what it wrote. */
async function sendAndWait(s: TestSession, data: string, ms = 150): Promise<string> {
  s.session.feed(Buffer.from(data, 'utf8'));
  await sleep(ms);
  return s.take();
}

const THROWN: Array<[string, () => unknown]> = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['a string', () => 'boom'],
  ['a number', () => 42],
  ['a Symbol', () => Symbol('boom')],
  ['a BigInt', () => 10n],
  ['an object with a throwing toString', () => ({ toString: () => { throw new Error('no string for you'); } })],
  ['a circular object', () => { const o: Record<string, unknown> = {}; o.self = o; return o; }],
  ['an Error with a circular cause', () => { const e = new Error('x') as Error & { cause?: unknown }; e.cause = e; return e; }],
];

describe('taps that throw synchronously, whatever they throw', () => {
  for (const [what, value] of THROWN) {
    it(`throw ${what} at mail → 451, session goes on; at rcpt → 450; never accepted`, async () => {
      const gw = gateway();
      const cap = capture();
      await gw.use(
        plugin('thrower', ({ tap }) => {
          tap('mail', (_s, tx) => {
            if (tx.senderText === 'boom@x.test') throw value();
            return undefined;
          });
          tap('rcpt', (_s, _tx, rcpt) => {
            if (rcpt.address.local === 'boom') throw value();
            return undefined;
          });
        }),
      );
      await gw.use(cap.plugin);
      const s = await testSession(gw);
      await s.send('EHLO c.test\r\n');
      expect(await s.send('MAIL FROM:<boom@x.test>\r\n')).toMatch(/^451 4\.\d+\.\d+ /);
      expect(await s.send('MAIL FROM:<ok@x.test>\r\n')).toMatch(/^250 /);
      expect(await s.send('RCPT TO:<boom@y.test>\r\n')).toMatch(/^450 4\.\d+\.\d+ /);
      expect(await s.send('DATA\r\n')).toMatch(/^554 5\.5\.1 No valid recipients/);
      expect(cap.stored).toHaveLength(0);
    });
  }
});

describe('taps that reject asynchronously', () => {
  // These values survive the interceptor: it can turn them into a message.
  for (const [what, value] of THROWN.filter(([w]) => !['an object with a throwing toString'].includes(w))) {
    it(`async reject with ${what} at helo → 450, no crash`, async () => {
      const gw = gateway();
      await gw.use(plugin('async-thrower', ({ tap }) => tap('helo', async () => Promise.reject(value()))));
      const s = await testSession(gw);
      let out = '';
      const seen = await unhandledRejections(async () => {
        out = await sendAndWait(s, 'EHLO c.test\r\n');
      });
      expect(seen).toEqual([]);
      expect(out).toMatch(/^450 4\.7\.1 /);
    });
  }

  // BUG: an async tap that rejects with a value String() cannot convert (Object.create(null), an object whose toString throws) makes errorMessage() throw inside the interceptor's .then callback: unhandled rejection (kills the process under Node's default) and the session never gets a reply.
  it('async reject with Object.create(null) → 450 and no unhandled rejection (process crash)', async () => {
    const gw = gateway();
    await gw.use(plugin('null-proto', ({ tap }) => tap('helo', async () => Promise.reject(Object.create(null)))));
    const s = await testSession(gw);
    let out = '';
    const seen = await unhandledRejections(async () => {
      out = await sendAndWait(s, 'EHLO c.test\r\n');
    });
    expect(seen).toEqual([]);
    expect(out).toMatch(/^450 /);
  });

  // BUG: with a real logger, an async tap rejecting with a circular object makes recordTap's log.warn (JSON.stringify) throw inside the interceptor's .then callback: unhandled rejection → process crash; the session hangs.
  it('async reject with a circular object under a JSON logger → 451, no unhandled rejection', async () => {
    const lines: string[] = [];
    const gw = gateway({}, createLogger({ level: 'warn', write: (l) => void lines.push(l) }));
    await gw.use(
      plugin('circular', ({ tap }) =>
        tap('mail', async () => {
          const response: Record<string, unknown> = { status: 503 };
          response.request = { response }; // what HTTP client errors often look like
          throw response;
        }),
      ),
    );
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    let out = '';
    const seen = await unhandledRejections(async () => {
      out = await sendAndWait(s, 'MAIL FROM:<a@x.test>\r\n');
    });
    expect(seen).toEqual([]);
    expect(out).toMatch(/^451 /);
  });

  it('the same circular rejection from a synchronous tap is contained (451), even with a JSON logger', async () => {
    const gw = gateway({}, createLogger({ level: 'warn', write: () => undefined }));
    await gw.use(
      plugin('circular-sync', ({ tap }) =>
        tap('mail', () => {
          const o: Record<string, unknown> = {};
          o.self = o;
          throw o;
        }),
      ),
    );
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const seen = await unhandledRejections(async () => {
      expect(await sendAndWait(s, 'MAIL FROM:<a@x.test>\r\n')).toMatch(/^451 /);
    });
    expect(seen).toEqual([]);
  });
});

describe('taps that never settle, or settle too late', () => {
  it('a never-settling promise at rcpt, claim, data and queue: 4xx after the plugin timeout, then the session goes on', async () => {
    const gw = gateway({ pluginTimeout: '100ms' });
    const cap = capture();
    await gw.use(
      plugin('hang', ({ tap }) => {
        const never = () => new Promise<undefined>(() => undefined);
        tap('rcpt', (_s, _tx, r) => (r.address.local === 'hang' ? never() : undefined));
        tap('data', (_s, tx) => (tx.senderText === 'hang-data@x.test' ? never() : undefined));
        tap('queue', (_s, tx) => (tx.senderText === 'hang-queue@x.test' ? never() : undefined));
      }),
    );
    await gw.use(cap.plugin);
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    await s.send('MAIL FROM:<a@x.test>\r\n');
    expect(await s.send('RCPT TO:<hang@y.test>\r\n')).toMatch(/^450 /);
    expect(await s.send('RSET\r\n')).toMatch(/^250 /);
    for (const sender of ['hang-data@x.test', 'hang-queue@x.test']) {
      const out = await s.send(`MAIL FROM:<${sender}>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\n`);
      expect(out).toMatch(/\r\n451 4\.\d+\.\d+ [^\r]*\r\n$/);
    }
    expect(cap.stored).toHaveLength(0);
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it('an answer that arrives after the timeout is ignored: a late claim does not make the recipient deliverable', async () => {
    const gw = gateway({ pluginTimeout: '50ms' });
    const claimed: string[] = [];
    await gw.use(
      plugin('late', ({ tap }) => {
        tap('claim', async () => {
          await sleep(150);
          return accept();
        });
        tap('queue', (_s, tx) => {
          claimed.push(...tx.claimedBy('late').map((r) => r.text));
          return undefined;
        });
      }),
    );
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\n');
    expect(await s.send('RCPT TO:<b@y.test>\r\n')).toMatch(/^450 /);
    await sleep(200);
    expect(await s.send('DATA\r\n')).toMatch(/^554 /);
    expect(claimed).toEqual([]);
  });

  it('a hanging disconnect tap does not keep the connection slot: it is bounded by the plugin timeout', async () => {
    const t = await startTestGateway({ pluginTimeout: '100ms', limits: { maxConnectionsPerIp: 1 } }, (g) =>
      g.use(plugin('hang-disconnect', ({ tap }) => tap('disconnect', () => new Promise<void>(() => undefined)))),
    );
    try {
      const a = await RawClient.connect(t.port);
      await a.waitFor(/^220 /);
      a.destroy();
      await until(() => t.gateway.connections === 0, 'slot released');
      const b = await RawClient.connect(t.port);
      expect(await b.waitFor(/^220 /)).toBe(true);
      b.destroy();
    } finally {
      await t.close();
    }
  });
});

describe('taps that return what is not a verdict', () => {
  const FORGED: Array<[string, unknown]> = [
    ['a plain { kind: "accept" } object', { kind: 'accept' }],
    ['true', true],
    ['the string "accept"', 'accept'],
    ['a number', 250],
    ['an array', [accept()]],
    ['a frozen copy of a real accept verdict', Object.freeze({ ...accept() })],
  ];
  for (const [what, value] of FORGED) {
    it(`${what} at rcpt is a tempfail, never an accept of a relay recipient`, async () => {
      const gw = gateway();
      await gw.use(plugin('forger', ({ tap }) => tap('rcpt', () => value as Verdict)));
      const s = await testSession(gw);
      await s.send('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\n');
      expect(await s.send('RCPT TO:<victim@far.example>\r\n')).toMatch(/^450 4\.7\.1 /);
    });
  }

  it('a verdict whose code contradicts its kind is corrected: reject(…, { code: 250 }) is still a 5xx', async () => {
    const gw = gateway();
    await gw.use(plugin('confused', ({ tap }) => tap('mail', () => reject('no', { code: 250, enhanced: '2.0.0' }))));
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    expect(await s.send('MAIL FROM:<a@x.test>\r\n')).toBe('550 5.0.0 no\r\n');
  });

  it('CR/LF in a verdict message cannot forge a second reply', async () => {
    const gw = gateway();
    await gw.use(plugin('crlf', ({ tap }) => tap('mail', () => tempfail('busy\r\n250 2.1.0 Sender OK\r\n354 go'))));
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const out = await s.send('MAIL FROM:<a@x.test>\r\n');
    for (const line of out.split('\r\n').filter(Boolean)) expect(line).toMatch(/^451[ -]4\.7\.1 /);
  });

  it('CR/LF in an EHLO extension a plugin pushes cannot forge extra reply lines', async () => {
    const gw = gateway();
    await gw.use(plugin('ext', ({ tap }) => tap('helo', (_s, info) => void info.extensions.push('XFOO\r\n250 AUTH PLAIN'))));
    const s = await testSession(gw);
    const out = await s.send('EHLO c.test\r\n');
    expect(out.split('\r\n').filter(Boolean).every((l) => /^250[ -]/.test(l))).toBe(true);
    expect(out).not.toMatch(/\r\n250[ -]AUTH/);
  });

  // BUG: verdictToReply() passes a non-string `message` through and formatReply() writes nothing for it (lines.length is undefined): the client gets NO reply and waits forever.
  it('reject(new Error(…)) — a non-string message — still produces a reply', async () => {
    const gw = gateway();
    await gw.use(
      plugin('sloppy', ({ tap }) =>
        tap('mail', () => {
          const err = new Error('database unreachable');
          return tempfail(err as unknown as string); // what `catch (err) { return tempfail(err) }` does in a JS plugin
        }),
      ),
    );
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    expect(await s.send('MAIL FROM:<a@x.test>\r\n')).toMatch(/^451 4\.7\.1 /);
  });

  // BUG: same root cause with a number: reject(404) sends nothing at all.
  it('reject(404) — a number as the message — still produces a 5xx reply', async () => {
    const gw = gateway();
    await gw.use(plugin('numeric', ({ tap }) => tap('rcpt', () => reject(404 as unknown as string))));
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\n');
    expect(await s.send('RCPT TO:<b@y.test>\r\n')).toMatch(/^550 5\.7\.1 /);
  });
});

describe('queue failures never turn into 250', () => {
  for (const [what, value] of THROWN.slice(0, 5)) {
    it(`a queue tap that throws ${what}: 451, and the client is not told "queued"`, async () => {
      const gw = gateway();
      const cap = capture();
      await gw.use(cap.plugin);
      await gw.use(plugin('failing-store', ({ tap }) => tap('queue', () => { throw value(); })));
      const s = await testSession(gw);
      const out = await s.send('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: t\r\n\r\nx\r\n.\r\n');
      expect(out).toMatch(/\r\n451 4\.3\.0 [^\r]*\r\n$/);
      expect(out).not.toMatch(/queued as/);
    });
  }

  it('a prependHeader() with CR/LF from a data tap (header injection attempt) fails the message with 451, nothing is stored', async () => {
    const gw = gateway();
    const cap = capture();
    await gw.use(plugin('injector', ({ tap }) => tap('data', (_s, tx) => void tx.message!.prependHeader('X-Spam', 'no\r\nBcc: victim@x.test'))));
    await gw.use(cap.plugin);
    const s = await testSession(gw);
    const out = await s.send('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: t\r\n\r\nx\r\n.\r\n');
    expect(out).toMatch(/\r\n451 /);
    expect(cap.stored).toHaveLength(0);
  });
});

describe('hook ordering under a client that leaves early', () => {
  // BUG: SmtpSession.ended() does not wait for a connect (or mail/rcpt) hook still in flight: `disconnect` (and `reset`) run before the tap that allocated per-session state has finished, so that state is never cleaned up (see plugin-acl's slot leak).
  it('disconnect runs only after the connect tap has finished', async () => {
    const order: string[] = [];
    const t = await startTestGateway({}, (g) =>
      g.use(
        plugin('slow-connect', ({ tap }) => {
          tap('connect', async () => {
            await sleep(200); // e.g. a DNS lookup or a shared counter store
            order.push('connect finished');
            return undefined;
          });
          tap('disconnect', () => void order.push('disconnect'));
        }),
      ),
    );
    try {
      const c = await RawClient.connect(t.port);
      c.destroy();
      await until(() => order.length === 2, 'both hooks ran', 3_000);
      expect(order).toEqual(['connect finished', 'disconnect']);
    } finally {
      await t.close();
    }
  });

  // BUG: same root cause: a client that drops while a `mail` tap is still deciding gets `reset` and `disconnect` run under that tap (the transaction is torn down while a plugin still uses it).
  it('reset and disconnect run only after the in-flight mail tap has finished', async () => {
    const order: string[] = [];
    const gw = gateway();
    await gw.use(
      plugin('slow-mail', ({ tap }) => {
        tap('mail', async () => {
          order.push('mail start');
          await sleep(150);
          order.push('mail end');
          return undefined;
        });
        tap('reset', () => void order.push('reset'));
        tap('disconnect', () => void order.push('disconnect'));
      }),
    );
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    s.session.feed(Buffer.from('MAIL FROM:<a@x.test>\r\n'));
    await sleep(30);
    await s.end(); // the peer is gone
    await sleep(200);
    expect(order).toEqual(['mail start', 'mail end', 'reset', 'disconnect']);
  });
});

describe('setup-time faults', () => {
  it('a plugin whose setup throws null is reported, not a crash', async () => {
    const gw = gateway();
    await expect(gw.use(plugin('bad-setup', () => { throw null; }))).rejects.toBeNull();
  });

  it('tapAsync (callback style) is refused at setup with a clear message', async () => {
    const gw = gateway();
    await expect(
      gw.use(plugin('callbacks', ({ hooks }) => (hooks.mail as unknown as { tapAsync(n: string, f: Function): void }).tapAsync('cb', () => undefined))),
    ).rejects.toThrow(/promise-only/);
  });

  it('tapping after listen() throws instead of silently adding an untimed tap', async () => {
    const t = await startTestGateway({});
    try {
      expect(() => t.gateway.hooks.rcpt.tap('late', () => accept())).toThrow(/after the gateway started listening/);
    } finally {
      await t.close();
    }
  });
});
