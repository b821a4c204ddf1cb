/**
 * Delivery events for other plugins. The core's hook object is frozen, so the relay
 * keeps its own tapable hooks per gateway, in a registry stored under a global
 * symbol (so two copies of this package in one process still share it):
 *
 *   import { relayHooks } from '@mailgate/plugin-relay';
 *   relayHooks(context.gateway).delivered.tapPromise('my-plugin', async (event) => { ... });
 *
 * A plugin that must not depend on this package can reach the same object with
 * `globalThis[Symbol.for('mailgate.relay.hooks')].get(context.gateway)` (a WeakMap),
 * once the relay plugin was set up. Taps run after the new state is on disk; an
 * error in a tap is logged and never changes the delivery.
 */
import { AsyncSeriesHook } from 'tapable';

export interface DeliveredEvent {
  id: string;
  recipients: string[];
  /** Host:port that accepted the message. */
  host: string;
  response: string;
}

export interface DeferredEvent {
  id: string;
  recipients: string[];
  error: string;
  /** ms since epoch of the next attempt. */
  nextAttempt: number;
  attempts: number;
}

export interface BouncedEvent {
  id: string;
  /** `suppressed`: the recipient's NOTIFY (RFC 3461) asked for no failure DSN, so none was sent for it. */
  recipients: Array<{ address: string; error: string; suppressed?: true }>;
  /** Id of the queued DSN (or double bounce) carrying the failure, or undefined when it is held (or all were suppressed). */
  bounceId: string | undefined;
  /** Why: a 5xx answer / unroutable destination, or the message expired. */
  reason: 'failed' | 'expired';
}

export interface RelayHooks {
  readonly delivered: AsyncSeriesHook<[DeliveredEvent]>;
  readonly deferred: AsyncSeriesHook<[DeferredEvent]>;
  readonly bounced: AsyncSeriesHook<[BouncedEvent]>;
}

const KEY = Symbol.for('mailgate.relay.hooks');
type Registry = WeakMap<object, RelayHooks>;

function registry(): Registry {
  const global = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (global[KEY] ??= new WeakMap());
}

/** The relay hooks of a gateway (created on first use, so taps may be added before or after the relay's setup). */
export function relayHooks(gateway: object): RelayHooks {
  const map = registry();
  let hooks = map.get(gateway);
  if (!hooks) {
    hooks = Object.freeze({
      delivered: new AsyncSeriesHook<[DeliveredEvent]>(['event']),
      deferred: new AsyncSeriesHook<[DeferredEvent]>(['event']),
      bounced: new AsyncSeriesHook<[BouncedEvent]>(['event']),
    });
    map.set(gateway, hooks);
  }
  return hooks;
}
