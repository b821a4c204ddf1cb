/**
 * Hooks and verdicts: reject / tempfail / disconnect at every stage with default and
 * explicit codes, contradictory codes corrected, throwing / hanging / invalid taps
 * turned into 4xx for that step, claims, the default recipient policy (no open relay),
 * queue taps all running, and the event hooks.
 */
import { describe, expect, it } from 'vitest';
import {
  HookStage,
  accept,
  disconnect,
  reject,
  tempfail,
  type Gateway,
  type HookName,
  type Verdict,
} from '../../src/index.js';
import { TestSession, testSession } from '../../src/testing/index.js';
import {
  GO_AHEAD,
  OK_MAIL,
  OK_RCPT,
  discardPlugin,
  envelope,
  lines,
  makeGateway,
  plugin,
  ready,
  sleep,
  storePlugin,
} from './helpers.js';

type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'queue';

/** Drive a session up to `stage` and return the reply to that stage's command. */
async function runTo(gw: Gateway, stage: Stage): Promise<{ s: TestSession; reply: string }> {
  const s = await testSession(gw);
  if (stage === 'connect') return { s, reply: s.output };
  const ehlo = await s.send('EHLO c.test\r\n');
  if (stage === 'helo') return { s, reply: ehlo };
  const mail = await s.send('MAIL FROM:<a@b.test>\r\n');
  if (stage === 'mail') return { s, reply: mail };
  const rcpt = await s.send('RCPT TO:<x@example.test>\r\n');
  if (stage === 'rcpt') return { s, reply: rcpt };
  expect(await s.send('DATA\r\n')).toBe(GO_AHEAD);
  return { s, reply: await s.send('Subject: t\r\n\r\nhi\r\n.\r\n') };
}

/** A gateway with a store claiming example.test, plus a plugin answering `fn` at `stage`. */
async function gatewayWith(stage: Stage, fn: () => unknown, config: Parameters<typeof makeGateway>[0] = {}) {
  const gw = makeGateway(config);
  const hook = stage as HookName;
  const store = storePlugin('store', { domains: ['example.test'] });
  if (stage === 'queue') {
    await gw.use(plugin('judge', ({ tap }) => tap(hook, fn as never)));
    await gw.use(store.plugin);
  } else {
    await gw.use(store.plugin);
    await gw.use(plugin('judge', ({ tap }) => tap(hook, fn as never)));
  }
  return { gw, stored: store.stored };
}

const DEFAULTS: Record<Stage, Record<'reject' | 'tempfail' | 'disconnect', string>> = {
  connect: {
    reject: '554 5.7.1 Connection refused',
    tempfail: '421 4.3.2 Service not available, try again later',
    disconnect: '421 4.3.2 Closing connection',
  },
  helo: {
    reject: '550 5.7.1 HELO/EHLO name rejected',
    tempfail: '450 4.7.1 HELO/EHLO name temporarily rejected',
    disconnect: '421 4.3.2 Closing connection',
  },
  mail: {
    reject: '550 5.7.1 Sender rejected',
    tempfail: '451 4.7.1 Sender temporarily rejected, try again later',
    disconnect: '421 4.3.2 Closing connection',
  },
  rcpt: {
    reject: '550 5.7.1 Recipient rejected',
    tempfail: '450 4.7.1 Recipient temporarily rejected, try again later',
    disconnect: '421 4.3.2 Closing connection',
  },
  data: {
    reject: '550 5.7.1 Message rejected',
    tempfail: '451 4.7.1 Message temporarily rejected, try again later',
    disconnect: '421 4.3.2 Closing connection',
  },
  queue: {
    reject: '554 5.3.0 Message could not be stored',
    tempfail: '451 4.3.0 Message could not be stored, try again later',
    disconnect: '421 4.3.2 Closing connection',
  },
};
const STAGES = Object.keys(DEFAULTS) as Stage[];
const MAKERS = { reject, tempfail, disconnect };

describe('verdicts at every stage', () => {
  const cases = STAGES.flatMap((stage) => (['reject', 'tempfail', 'disconnect'] as const).map((kind) => [stage, kind] as const));

  it.each(cases)('%s: %s with the default code', async (stage, kind) => {
    const { gw, stored } = await gatewayWith(stage, () => MAKERS[kind]());
    const { s, reply } = await runTo(gw, stage);
    expect(reply).toBe(`${DEFAULTS[stage][kind]}\r\n`);
    expect(stored).toHaveLength(0);
    const closes = kind === 'disconnect' || stage === 'connect';
    expect(s.closed).toBe(closes);
    if (!closes) expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it.each(STAGES)('%s: explicit codes and text are used when their class fits the kind', async (stage) => {
    const explicit = {
      connect: ['reject', 550, '5.7.0', '550 5.7.0 No service for you'],
      helo: ['reject', 501, '5.5.2', '501 5.5.2 No service for you'],
      mail: ['tempfail', 452, '4.3.1', '452 4.3.1 No service for you'],
      rcpt: ['reject', 551, '5.1.6', '551 5.1.6 No service for you'],
      data: ['reject', 554, '5.6.0', '554 5.6.0 No service for you'],
      queue: ['tempfail', 452, '4.3.1', '452 4.3.1 No service for you'],
    } as const;
    const [kind, code, enhanced, expected] = explicit[stage];
    const { gw } = await gatewayWith(stage, () => MAKERS[kind]('No service for you', { code, enhanced, reason: 'internal only' }));
    const { reply } = await runTo(gw, stage);
    expect(reply).toBe(`${expected}\r\n`);
    expect(reply).not.toContain('internal only');
  });

  it.each([
    ['reject with 451', () => reject('Nope', { code: 451 }), '550 5.7.1 Nope'],
    ['reject with a 4.x.x enhanced code', () => reject('Nope', { code: 553, enhanced: '4.1.8' }), '553 5.1.8 Nope'],
    ['tempfail with 550', () => tempfail(undefined, { code: 550, enhanced: '5.2.2' }), '450 4.2.2 Recipient temporarily rejected, try again later'],
    ['tempfail with 250', () => tempfail('Later', { code: 250 }), '450 4.7.1 Later'],
    ['accept with 550', () => accept('Fine', { code: 550, enhanced: '5.1.1' }), '250 2.1.1 Fine'],
    ['disconnect with 554', () => disconnect('Bye', { code: 554, enhanced: '5.7.1' }), '421 4.7.1 Bye'],
    ['reject with code 600', () => reject('Nope', { code: 600 }), '550 5.7.1 Nope'],
    ['reject with code 5.5', () => reject('Nope', { code: 5.5 }), '550 5.7.1 Nope'],
    ['reject with a malformed enhanced code', () => reject('Nope', { enhanced: '5.7' }), '550 5.7.1 Nope'],
    ['reject with a multi-line message', () => reject('line one\r\n250 fake OK'), '550-5.7.1 line one \r\n550 5.7.1 250 fake OK'],
  ])('a verdict whose code contradicts its kind is corrected (%s)', async (_what, make, expected) => {
    const { gw } = await gatewayWith('rcpt', make);
    const { reply } = await runTo(gw, 'rcpt');
    expect(reply).toBe(`${expected}\r\n`);
  });

  it('the disconnect verdict at DATA closes after the reply and nothing is queued', async () => {
    const { gw, stored } = await gatewayWith('data', () => disconnect());
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test') + 'hi\r\n.\r\nNOOP\r\n')).toBe(
      OK_MAIL + OK_RCPT + GO_AHEAD + '421 4.3.2 Closing connection\r\n',
    );
    expect(s.closed).toBe(true);
    expect(stored).toHaveLength(0);
  });
});

describe('broken plugins become a temporary failure for that step', () => {
  const TEMP: Record<Stage, string> = {
    connect: '421 4.3.2 Service not available, try again later',
    helo: '450 4.7.1 HELO/EHLO name temporarily rejected',
    mail: '451 4.7.1 Sender temporarily rejected, try again later',
    rcpt: '450 4.7.1 Recipient temporarily rejected, try again later',
    data: '451 4.7.1 Message temporarily rejected, try again later',
    queue: '451 4.3.0 Message could not be stored, try again later',
  };
  const BROKEN: Array<[string, () => unknown]> = [
    ['throws', () => {
      throw new Error('plugin bug');
    }],
    ['rejects its promise', () => Promise.reject(new Error('async plugin bug'))],
    ['throws a non-Error', () => {
      throw 'a string'; // eslint-disable-line no-throw-literal
    }],
    ['hangs past the timeout', () => new Promise(() => undefined)],
    ['returns null', () => null],
    ['returns false', () => false],
    ['returns a string', () => 'OK'],
    ['returns a number', () => 250],
    ['returns a look-alike object', () => ({ kind: 'accept' })],
    ['resolves to null', async () => null],
  ];
  const cases = STAGES.flatMap((stage) => BROKEN.map(([what, fn]) => [stage, what, fn] as const));

  it.each(cases)('%s tap that %s', async (stage, _what, fn) => {
    const { gw, stored } = await gatewayWith(stage, fn, { pluginTimeout: '50ms' });
    const { s, reply } = await runTo(gw, stage);
    expect(reply).toBe(`${TEMP[stage]}\r\n`);
    // Counted as a plugin failure (and logged as one), not as a decision.
    expect(gw.stats.get(`judge\u0000${stage}`)).toMatchObject({ calls: 1, errors: 1 });
    expect(stored).toHaveLength(0);
    expect(s.closed).toBe(stage === 'connect');
    if (stage !== 'connect') expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it('a per-plugin timeout overrides pluginTimeout', async () => {
    const gw = makeGateway({ pluginTimeout: '10s' });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    await gw.use(plugin('slow', ({ tap }) => tap('rcpt', () => new Promise<undefined>(() => undefined))), undefined, { timeout: 50 });
    const start = performance.now();
    const { reply } = await runTo(gw, 'rcpt');
    expect(reply).toBe(`${TEMP.rcpt}\r\n`);
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('a broken tap is in the audit trail and the stats, and its late answer is ignored', async () => {
    const gw = makeGateway({ pluginTimeout: '30ms' });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(plugin('late', ({ tap }) => tap('rcpt', async () => (await sleep(120), reject()))));
    await gw.use(store.plugin);
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n')).toBe(OK_MAIL + `${TEMP.rcpt}\r\n`);
    const tx = s.session.transaction!;
    await sleep(200);
    expect(tx.audit.filter((e) => e.plugin === 'late')).toEqual([
      expect.objectContaining({ hook: 'rcpt', plugin: 'late', verdict: 'timeout', recipient: 'x@example.test' }),
    ]);
    expect(gw.stats.get('late\u0000rcpt')).toMatchObject({ calls: 1, errors: 1 });
  });

  it('an event-hook tap that throws or hangs does not break the session', async () => {
    const gw = makeGateway({ pluginTimeout: '30ms' });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    await gw.use(
      plugin('events', ({ tap }) => {
        tap('reset', () => {
          throw new Error('reset bug');
        });
        tap('quit', () => new Promise<void>(() => undefined));
      }),
    );
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRSET\r\n')).toBe(OK_MAIL + '250 2.0.0 OK\r\n');
    expect(await s.send(envelope('a@b.test', 'x@example.test') + 'hi\r\n.\r\n')).toMatch(/250 2\.0\.0 OK: queued/);
    expect(store.stored).toHaveLength(1);
    expect(await s.send('QUIT\r\n')).toBe('221 2.0.0 mx.test closing connection\r\n');
    await s.end();
  });
});

describe('claims and the default recipient policy', () => {
  it('with no plugins at all every recipient is refused: no open relay by default', async () => {
    const gw = makeGateway();
    const s = await ready(gw);
    expect(
      await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'RCPT TO:<y@[192.0.2.1]>', 'RCPT TO:<postmaster@elsewhere.test>', 'DATA')),
    ).toBe(
      OK_MAIL +
        '554 5.7.1 <x@example.test>: Relay access denied\r\n' +
        '554 5.7.1 <y@[192.0.2.1]>: Relay access denied\r\n' +
        '554 5.7.1 <postmaster@elsewhere.test>: Relay access denied\r\n' +
        '554 5.5.1 No valid recipients\r\n',
    );
  });

  it('an unclaimed recipient of a local domain is 550 5.1.1; <postmaster> too when nobody takes it', async () => {
    const gw = makeGateway();
    gw.addLocalDomain('Local.Test.');
    const s = await ready(gw);
    expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<nobody@local.test>', 'RCPT TO:<NOBODY@LOCAL.TEST>', 'RCPT TO:<postmaster>'))).toBe(
      OK_MAIL +
        '550 5.1.1 <nobody@local.test>: Recipient address rejected: User unknown\r\n' +
        '550 5.1.1 <NOBODY@LOCAL.TEST>: Recipient address rejected: User unknown\r\n' +
        '550 5.1.1 <postmaster>: Recipient address rejected: User unknown\r\n',
    );
  });

  it('discard claims its domains and declares them local', async () => {
    const gw = makeGateway();
    await gw.use(discardPlugin, { domains: ['example.test'] });
    const s = await ready(gw);
    expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@EXAMPLE.test>', 'RCPT TO:<x@other.test>'))).toBe(
      OK_MAIL + OK_RCPT + '554 5.7.1 <x@other.test>: Relay access denied\r\n',
    );
    expect(s.session.transaction!.recipients[0]!.claimedBy).toBe('discard');
    expect(gw.isLocalDomain('example.test')).toBe(true);
  });

  it('a rcpt accept without a claim is accepted (the policy said yes)', async () => {
    const gw = makeGateway();
    await gw.use(plugin('acl', ({ tap }) => tap('rcpt', () => accept('Relaying for you'))));
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@far.test>\r\n')).toBe(OK_MAIL + '250 2.1.5 Relaying for you\r\n');
    expect(s.session.transaction!.recipients[0]!.claimedBy).toBeUndefined();
  });

  it('first claim wins; claimedBy and the audit trail name the plugin; every queue tap runs', async () => {
    const gw = makeGateway();
    const a = storePlugin('mailbox', { domains: ['example.test'] });
    const b = storePlugin('relay', { domains: '*' });
    await gw.use(a.plugin);
    await gw.use(b.plugin);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test', 'y@far.test', 'z@example.test') + 'hi\r\n.\r\n')).toMatch(
      new RegExp(`^${OK_MAIL}${OK_RCPT}${OK_RCPT}${OK_RCPT}${GO_AHEAD}250 2\\.0\\.0 OK: queued`),
    );
    expect(a.stored).toHaveLength(1);
    expect(b.stored).toHaveLength(1);
    expect(a.stored[0]!.claimed).toEqual(['x@example.test', 'z@example.test']);
    expect(b.stored[0]!.claimed).toEqual(['y@far.test']);
    expect(a.stored[0]!.bytes.equals(b.stored[0]!.bytes)).toBe(true);
    const claims = a.stored[0]!.audit.filter((e) => e.hook === 'claim');
    expect(claims.map((e) => [e.plugin, e.verdict, e.recipient])).toEqual([
      ['mailbox', 'claim', 'x@example.test'],
      ['relay', 'claim', 'y@far.test'],
      ['mailbox', 'claim', 'z@example.test'],
    ]);
    // The audit trail after queue: each store's accept is recorded under its own name.
    expect(b.stored[0]!.audit.filter((e) => e.hook === 'queue').map((e) => [e.plugin, e.verdict])).toEqual([['mailbox', 'accept']]);
  });

  it('a claim tap may refuse a recipient (e.g. over quota) with its own code', async () => {
    const gw = makeGateway();
    await gw.use(plugin('quota', ({ tap }) => tap('claim', () => tempfail('Mailbox full', { code: 452, enhanced: '4.2.2' }))));
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n')).toBe(OK_MAIL + '452 4.2.2 Mailbox full\r\n');
  });

  it('a rcpt reject ends the stage before any claim', async () => {
    const gw = makeGateway();
    const claims: string[] = [];
    await gw.use(plugin('acl', ({ tap }) => tap('rcpt', (_s, _t, r) => (r.address.local === 'bad' ? reject() : undefined))));
    await gw.use(plugin('box', ({ tap }) => tap('claim', (_s, _t, r) => (claims.push(r.text), accept()))));
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<bad@x.test>\r\nRCPT TO:<good@x.test>\r\n')).toBe(
      OK_MAIL + '550 5.7.1 Recipient rejected\r\n' + OK_RCPT,
    );
    expect(claims).toEqual(['good@x.test']);
    const audit = s.session.transaction!.audit;
    expect(audit.map((e) => [e.hook, e.plugin, e.verdict, e.recipient])).toEqual([
      ['rcpt', 'acl', 'reject', 'bad@x.test'],
      ['claim', 'box', 'claim', 'good@x.test'],
    ]);
  });
});

describe('queue', () => {
  it.each([
    ['throws', 'throw', '451 4.3.0 Message could not be stored, try again later'],
    ['returns tempfail', 'tempfail-verdict', '451 4.3.0 Message could not be stored, try again later'],
    ['returns reject', 'reject-verdict', '554 5.3.0 Message could not be stored'],
  ] as const)('a second store that %s fails the message: no 250', async (_w, fail, expected) => {
    const gw = makeGateway();
    const a = storePlugin('a', { domains: ['example.test'] });
    const b = storePlugin('b', { domains: '*', fail });
    await gw.use(a.plugin);
    await gw.use(b.plugin);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test', 'y@far.test') + 'hi\r\n.\r\n')).toBe(
      OK_MAIL + OK_RCPT + OK_RCPT + GO_AHEAD + `${expected}\r\n`,
    );
    expect(a.stored).toHaveLength(1); // it ran (first), but the client was told to retry
    expect(b.stored).toHaveLength(1);
    expect(s.session.messageCount).toBe(0);
  });

  it('a data reject is 550 and the queue is never called', async () => {
    const { gw, stored } = await gatewayWith('data', () => reject());
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test') + 'spam\r\n.\r\n')).toBe(
      OK_MAIL + OK_RCPT + GO_AHEAD + '550 5.7.1 Message rejected\r\n',
    );
    expect(stored).toHaveLength(0);
  });

  it('a data tap sees the Received header already and may add its own headers', async () => {
    const gw = makeGateway();
    const store = storePlugin('store', { domains: ['example.test'] });
    let seenReceived: string | undefined;
    await gw.use(
      plugin('tagger', ({ tap }) =>
        tap('data', async (_s, tx) => {
          seenReceived = await tx.message!.header('received');
          tx.message!.prependHeader('X-Spam-Score', '1.5');
          expect(() => tx.message!.prependHeader('X-Evil', 'a\r\nBcc: x@y.test')).toThrow(TypeError);
        }),
      ),
    );
    await gw.use(store.plugin);
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test') + 'Subject: s\r\n\r\nhi\r\n.\r\n')).toMatch(/250 2\.0\.0 OK: queued/);
    expect(seenReceived).toMatch(/^from c\.test \(\[127\.0\.0\.1\]\)\s+by mx\.test \(Mailgate\) with ESMTP id /);
    const text = store.stored[0]!.bytes.toString('latin1');
    expect(text.startsWith('X-Spam-Score: 1.5\r\nReceived: from c.test')).toBe(true);
    expect(text.endsWith('\r\nSubject: s\r\n\r\nhi\r\n')).toBe(true);
  });
});

describe('event hooks', () => {
  function eventGateway() {
    const gw = makeGateway();
    const events: string[] = [];
    const store = storePlugin('store', { domains: ['example.test'] });
    return {
      gw,
      events,
      store,
      async setup(extra?: (tap: (hook: HookName, fn: (...a: never[]) => unknown) => void) => void) {
        await gw.use(store.plugin);
        await gw.use(
          plugin('events', ({ tap }) => {
            tap('connect', () => void events.push('connect'));
            tap('reset', (_s, tx) => void events.push(`reset ${tx.id.split('.')[1]}`));
            tap('quit', () => void events.push('quit'));
            tap('disconnect', () => void events.push('disconnect'));
            extra?.(tap as never);
          }),
        );
      },
    };
  }

  it('reset runs on RSET, on a new EHLO, after each message, and not without a transaction', async () => {
    const e = eventGateway();
    await e.setup();
    const s = await ready(e.gw, { id: 'E' });
    await s.send('RSET\r\n');
    await s.send('MAIL FROM:<a@b.test>\r\nRSET\r\n');
    await s.send('MAIL FROM:<a@b.test>\r\nEHLO c.test\r\n');
    await s.send(envelope('a@b.test', 'x@example.test') + 'hi\r\n.\r\n');
    await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nBDAT 0 LAST\r\n');
    await s.send('QUIT\r\n');
    await s.end();
    expect(e.events).toEqual(['connect', 'reset 1', 'reset 2', 'reset 3', 'reset 4', 'quit', 'disconnect']);
  });

  it('a refused MAIL still resets its transaction; a dropped connection resets the open one', async () => {
    const e = eventGateway();
    await e.setup((tap) => tap('mail', (s: { transaction?: { sender?: { local: string } } }) => (s.transaction?.sender?.local === 'bad' ? reject() : undefined)));
    const s = await ready(e.gw);
    expect(await s.send('MAIL FROM:<bad@b.test>\r\n')).toBe('550 5.7.1 Sender rejected\r\n');
    expect(s.session.transaction).toBeUndefined();
    await s.send(envelope('a@b.test', 'x@example.test') + 'unfinished');
    await s.end();
    expect(e.events).toEqual(['connect', 'reset 1', 'reset 2', 'disconnect']);
    expect(s.session.closed).toBe(true);
  });

  it('a connect reject answers 554 and closes; commands are then ignored', async () => {
    const gw = makeGateway();
    const seen: string[] = [];
    await gw.use(
      plugin('block', ({ tap }) => {
        tap('connect', (s) => (s.remoteAddress === '192.0.2.66' ? reject() : undefined));
        tap('helo', () => void seen.push('helo'));
      }),
    );
    const s = await testSession(gw, { remoteAddress: '192.0.2.66' });
    expect(s.output).toBe('554 5.7.1 Connection refused\r\n');
    expect(s.closed).toBe(true);
    expect(await s.send('EHLO c.test\r\n')).toBe('');
    expect(seen).toEqual([]);
    const ok = await testSession(gw, { remoteAddress: '192.0.2.67' });
    expect(ok.output).toBe('220 mx.test ESMTP\r\n');
  });

  it('input that arrives while the connect hook runs is answered after the greeting, in order', async () => {
    const gw = makeGateway();
    await gw.use(plugin('slow', ({ tap }) => tap('connect', async () => void (await sleep(30)))));
    const s = new TestSession(gw);
    const started = s.start();
    s.session.feed(Buffer.from('EHLO c.test\r\nNOOP\r\n'));
    await started;
    await s.session.settled();
    expect(s.output).toMatch(/^220 mx\.test ESMTP\r\n250-mx\.test Hello c\.test [^]*250 CHUNKING\r\n250 2\.0\.0 OK\r\n$/);
  });

  it('taps with HookStage.EARLY run before normal ones regardless of order', async () => {
    const gw = makeGateway();
    const order: string[] = [];
    await gw.use(plugin('normal', ({ tap }) => tap('mail', () => void order.push('normal'))));
    await gw.use(plugin('early', ({ tap }) => tap('mail', () => void order.push('early'), { stage: HookStage.EARLY })));
    const s = await ready(gw);
    await s.send('MAIL FROM:<a@b.test>\r\n');
    expect(order).toEqual(['early', 'normal']);
  });

  it('the verdict helpers produce frozen verdicts and nothing else passes as one', () => {
    const v: Verdict = reject('x', { code: 550 });
    expect(Object.isFrozen(v)).toBe(true);
    expect(v).toMatchObject({ kind: 'reject', code: 550, message: 'x' });
  });
});
