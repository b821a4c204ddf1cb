/**
 * Types only (checked by `tsc`, i.e. `npm run typecheck`): `data` and `queue` taps get a
 * transaction whose `message` is there, so `tx.message.stream()` compiles under strict
 * without `!`; other hooks keep `Message | undefined`.
 */
import { createGateway, definePlugin, type Message, type Transaction, type TransactionWithMessage } from '@mailgate/core';
import { describe, expectTypeOf, it } from 'vitest';

describe('hook argument types', () => {
  it('data and queue taps get tx.message as a Message; rcpt and reset as Message | undefined', () => {
    definePlugin({
      name: 'types',
      setup({ tap }) {
        tap('data', async (_session, tx) => {
          expectTypeOf(tx).toEqualTypeOf<TransactionWithMessage>();
          expectTypeOf(tx.message).toEqualTypeOf<Message>();
          for await (const chunk of tx.message.stream()) void chunk;
        });
        tap('queue', (_session, tx) => {
          expectTypeOf(tx.message).toEqualTypeOf<Message>();
        });
        tap('rcpt', (_session, tx) => {
          expectTypeOf(tx.message).toEqualTypeOf<Message | undefined>();
        });
        tap('reset', (_session, tx) => {
          expectTypeOf(tx).toEqualTypeOf<Transaction>();
        });
      },
    });
    const gateway = createGateway({ hostname: 'mx.test' });
    gateway.hooks.queue.tapPromise('store', async (_session, tx) => {
      expectTypeOf(tx.message.size).toBeNumber();
      return undefined;
    });
    gateway.hooks.data.tap('score', (_session, tx) => {
      expectTypeOf(tx.message).toEqualTypeOf<Message>();
    });
    // A tap written against the wider Transaction (and `tx.message!`) still fits.
    gateway.hooks.data.tap('old-style', (_session, tx: Transaction) => {
      void tx.message!.size;
    });
  });
});
