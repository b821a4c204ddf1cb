/**
 * The queue directory's permissions. Queued mail is other people's mail: every file
 * the relay writes under `queueDir` is 0600 and every directory it creates is 0700,
 * whatever the process umask (Postfix keeps its queue private to the `postfix` user
 * the same way). The modes are given explicitly on each open/mkdir: a umask can only
 * take bits away from them, never add.
 *
 * Directories the administrator made beforehand keep their modes (the relay never
 * chmods what it did not create); a warning says which ones others can enter.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Mode of every file under the queue directory: the envelopes, the bodies, control requests, the pid file. */
export const FILE_MODE = 0o600;
/** Mode of every directory the relay creates: the queue directory itself, msg/, tmp/, ctl/, corrupt/. */
export const DIR_MODE = 0o700;

/**
 * Check, without creating anything, that the queue directory can be made or used:
 * it is a writable directory, or the nearest existing ancestor is. `mailgate check`
 * reports a bad `queueDir` this way; the directories are made when the gateway listens.
 */
export async function checkQueueDir(root: string): Promise<void> {
  let path = root;
  for (;;) {
    const found = await stat(path).catch((error: NodeJS.ErrnoException) => {
      // ENOTDIR: an ancestor is a file, which the walk up reaches and reports.
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw new Error(`queueDir ${root}: cannot look at ${path}: ${error.message}`);
    });
    if (found) {
      if (!found.isDirectory()) throw new Error(`queueDir ${root}: ${path} is not a directory`);
      await access(path, constants.W_OK | constants.X_OK).catch(() => {
        throw new Error(path === root ? `queueDir ${root} is not writable` : `queueDir ${root} cannot be created: ${path} is not writable`);
      });
      return;
    }
    const parent = dirname(path);
    if (parent === path) return;
    path = parent;
  }
}

/** Those of `dirs` (that exist) which users other than the owner may read or enter, with their modes in octal. */
export async function openToOthers(dirs: readonly string[]): Promise<Array<{ path: string; mode: string }>> {
  const open: Array<{ path: string; mode: string }> = [];
  for (const path of dirs) {
    const found = await stat(path).catch(() => undefined);
    if (found && (found.mode & 0o077) !== 0) open.push({ path, mode: (found.mode & 0o7777).toString(8).padStart(4, '0') });
  }
  return open;
}
