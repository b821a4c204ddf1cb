import { ConfigError } from '../../src/config/index.js';

/** The ConfigError thrown by fn (fails the test if none is thrown). */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** Join lines so YAML fixtures can be written with their line numbers visible. */
export const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;
