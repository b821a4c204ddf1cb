/**
 * The real `mailgate` command as a child process, for tests that need the whole
 * program: config file, plugins resolved from the config's directory, logging,
 * signals. Plugin authors test a plugin through `mailgate serve` this way:
 *
 *   const port = await freePort();
 *   const mailgate = await startMailgate(['serve', '-c', 'gateway.yaml', '--listen', `127.0.0.1:${port}`], { cwd: dir });
 *   …talk SMTP to port…
 *   expect(await mailgate.stop()).toEqual({ code: 0, signal: null });
 *
 * It runs this package's built CLI (bin/mailgate.js imports dist/cli.js): build first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * bin/mailgate.js of this package. This module is src/testing/cli.ts or
 * dist/testing/cli.js, both two levels below the package root, so one relative URL
 * finds it in the workspace and in an installed package alike.
 */
export const MAILGATE_BIN = fileURLToPath(new URL('../../bin/mailgate.js', import.meta.url));

export interface MailgateExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartMailgateOptions {
  /** Working directory of the child (relative config and plugin paths resolve from it); default this process's. */
  cwd?: string;
  /** Variables set on top of this process's environment (`undefined` removes one). */
  env?: NodeJS.ProcessEnv;
  /** Resolve once the output contains this; `false`: resolve at once (for one-shot commands). Default `'listening'`. */
  waitFor?: string | RegExp | false;
  /** How long to wait for `waitFor` before killing the child and rejecting; default 15 000 ms. */
  timeoutMs?: number;
}

export interface MailgateProcess {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Settles once the process has exited and all its output has been read. */
  exited: Promise<MailgateExit>;
  /** True once `exited` has settled. */
  readonly gone: boolean;
  /** SIGTERM (a graceful shutdown), then SIGKILL if it is still running after `graceMs` (default 10 000). */
  stop(graceMs?: number): Promise<MailgateExit>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Run `mailgate <args>` with this Node. Resolves when the output shows `waitFor`;
 * rejects with the output so far if the process exits first or time runs out, so a
 * failing test shows the CLI's own error.
 */
export async function startMailgate(args: string[], options: StartMailgateOptions = {}): Promise<MailgateProcess> {
  const waitFor = options.waitFor ?? 'listening';
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(process.execPath, [MAILGATE_BIN, ...args], {
    cwd: options.cwd,
    // NODE_OPTIONS is not passed on: flags meant for the test runner (a debugger's
    // --require, `--conditions=source`, which points @mailgate/* at src/*.ts that Node
    // cannot load) would change what the child runs.
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let out = '';
  let err = '';
  let all = '';
  let exit: MailgateExit | undefined;
  let changed = (): void => undefined; // wakes the wait for `waitFor` below
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    all += chunk;
    changed();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    all += chunk;
    changed();
  });
  child.once('error', (error) => {
    // e.g. a missing cwd: nothing ran, and 'close' follows with a negative code
    err += `${error.message}\n`;
    all += `${error.message}\n`;
  });
  // Should a grandchild keep the pipes open, 'close' would never come: end them soon after the exit.
  child.once('exit', () => setTimeout(() => (child.stdout!.destroy(), child.stderr!.destroy()), 1_000).unref());
  const exited = new Promise<MailgateExit>((resolve) =>
    child.once('close', (code, signal) => {
      exit = { code, signal };
      changed();
      resolve(exit);
    }),
  );

  const kill = async (): Promise<void> => {
    if (exit) return;
    child.kill('SIGKILL');
    await exited;
  };
  const running: MailgateProcess = {
    child,
    output: () => all,
    stdout: () => out,
    stderr: () => err,
    exited,
    get gone() {
      return exit !== undefined;
    },
    async stop(graceMs = 10_000) {
      if (!exit) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    kill,
  };
  if (waitFor === false) return running;

  const seen = (): boolean => (typeof waitFor === 'string' ? all.includes(waitFor) : all.search(waitFor) >= 0);
  const wanted = typeof waitFor === 'string' ? JSON.stringify(waitFor) : String(waitFor);
  const failure = (why: string): Error => new Error(`mailgate ${args.join(' ')}: ${why}; its output:\n${all}`);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(failure(`${wanted} not seen within ${timeoutMs} ms`)), timeoutMs);
      changed = () => {
        if (seen()) resolve();
        else if (exit) reject(failure(`exited (${exit.code ?? exit.signal}) before ${wanted} was seen`));
        else return;
        clearTimeout(timer);
      };
      changed();
    });
  } catch (error) {
    await kill(); // a timed-out child must not outlive the test that started it
    throw error;
  } finally {
    changed = () => undefined;
  }
  return running;
}
