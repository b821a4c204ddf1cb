/**
 * Waiting for work that takes no AbortSignal (a DNS lookup shared by several callers, a
 * promise computed once per transaction) while honouring one: taps get a `{ signal }`
 * (docs/plugins.md §4) and should stop waiting when it fires, even when the work
 * behind the promise cannot be stopped.
 */

/**
 * `promise`, or a rejection with `signal.reason` as soon as the signal aborts (at once
 * if it already has). The work behind `promise` goes on; its later failure is not
 * reported as unhandled. Without a signal, `promise` itself.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason as unknown);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      promise.catch(() => undefined);
      reject(signal.reason as unknown);
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
