/**
 * The two error results of check_host() travel as exceptions inside the evaluator, so
 * an error deep in an include or a redirect ends the whole evaluation, as RFC 7208 §5.2
 * and §6.1 want, without every caller checking a result.
 */
export class SpfError extends Error {
  override readonly name = 'SpfError';

  constructor(
    readonly result: 'temperror' | 'permerror',
    message: string,
  ) {
    super(message);
  }
}

export function permerror(message: string): SpfError {
  return new SpfError('permerror', message);
}

export function temperror(message: string): SpfError {
  return new SpfError('temperror', message);
}
