// Noticing that a file changed, the ways secret mounts change them: an in-place write, an atomic
// rename over it (a new inode), or Kubernetes' swap of the `..data` symlink its path goes through.
// fs.watch on the directory sees all three within milliseconds; a stat poll backs it up, because
// inotify does not fire on some network and overlay mounts, and the poll bounds the delay regardless.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface FileWatchOptions {
  /** How often the file's stat is compared with the last one. */
  pollMs: number;
  /** Called when the directory watch cannot run (the poll still does). */
  onWatchError(err: Error): void;
}

export interface FileWatch {
  close(): void;
}

// Identity and size and times of the file the path leads to (through symlinks), or why there is none.
function signature(file: string): string {
  try {
    const s = statSync(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code}`;
  }
}

/** Calls `changed` when the file may have changed; the caller reads it (and may be called spuriously). */
export function watchFileChanges(file: string, changed: () => void, opts: FileWatchOptions): FileWatch {
  let last = signature(file);
  let watcher: FSWatcher | undefined;
  // Any event in the directory counts: a rename's events name the temporary file, and a symlink
  // swap names `..data`. A spurious check costs one small read.
  try {
    watcher = watch(dirname(file), { persistent: false }, () => {
      last = signature(file);
      changed();
    });
    watcher.on('error', (err) => {
      opts.onWatchError(err);
      watcher?.close();
    });
  } catch (err) {
    opts.onWatchError(err as Error);
  }
  const poll = setInterval(() => {
    const now = signature(file);
    if (now === last) return;
    last = now;
    changed();
  }, opts.pollMs);
  poll.unref();
  return {
    close() {
      clearInterval(poll);
      watcher?.close();
    },
  };
}
