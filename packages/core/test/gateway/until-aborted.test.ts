import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { untilAborted } from '@mailgate/core';

describe('untilAborted', () => {
  it('passes the value or the failure through and leaves no listener behind', async () => {
    const controller = new AbortController();
    expect(await untilAborted(Promise.resolve(7), controller.signal)).toBe(7);
    await expect(untilAborted(Promise.reject(new Error('lookup failed')), controller.signal)).rejects.toThrow('lookup failed');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('without a signal it is the promise itself', () => {
    const p = Promise.resolve(1);
    expect(untilAborted(p, undefined)).toBe(p);
  });

  it('rejects with the reason as soon as the signal aborts, while the work goes on', async () => {
    const controller = new AbortController();
    let finish!: (v: string) => void;
    const work = new Promise<string>((resolve) => (finish = resolve));
    const waiting = untilAborted(work, controller.signal);
    controller.abort(new Error('session ended'));
    await expect(waiting).rejects.toThrow('session ended');
    finish('done');
    expect(await work).toBe('done');
  });

  it('rejects at once for a signal already aborted, and a later failure of the work is not unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (e: Error) => void;
      const work = new Promise<string>((_resolve, reject) => (fail = reject));
      await expect(untilAborted(work, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
      const controller = new AbortController();
      let fail2!: (e: Error) => void;
      const work2 = new Promise<string>((_resolve, reject) => (fail2 = reject));
      const waiting = untilAborted(work2, controller.signal);
      controller.abort(new Error('gone too'));
      await expect(waiting).rejects.toThrow('gone too');
      fail(new Error('late failure'));
      fail2(new Error('late failure 2'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
