// Key custody: every credential the sidecar holds (upstream API keys, the agent's token), one Secret
// per source for as long as a runtime uses it, so a policy reload, a file change and SIGHUP all update
// the same holder that live upstream clients read per request. Nothing is rebuilt and no call in flight
// fails during a rotation: a request takes whichever key is current when its headers are built.
// Each runtime takes its credentials through a lease; a source no open lease holds any more (a reload
// moved apiKeyFile elsewhere, and the old runtime has closed) is dropped with its watch and poll, so
// the watches follow the running policy instead of growing with every path it ever named.
// Rotations are logged by fingerprint, never by value.
import type { Logger } from 'pino';
import { watchFileChanges, type FileWatch } from './file-watch.ts';
import { Secret, type SecretChange, type SecretRead, type SecretSource } from './secret.ts';

export interface KeyCustodyOptions {
  log: Logger;
  /** Watch credential files for changes; without it only reloads (SIGHUP, POST /policy/reload) read them. */
  watch: boolean;
  /** The stat poll behind the directory watch; bounds the delay where inotify stays silent. */
  pollMs?: number;
}

/** Where credentials come from: the custody, a runtime's lease on it, or (absent) a read once now. */
export interface SecretHolder {
  /** The secret for a source, read now the first time it is asked for, and watched when it is a file. */
  secret(source: SecretSource, field: string): Secret;
}

/** One runtime's hold on the credentials it asked for; released when the runtime closes. */
export interface CustodyLease extends SecretHolder {
  /** Lets go of this lease's credentials; those no other lease holds stop being watched. Idempotent. */
  release(): void;
}

interface Held {
  id: string;
  secret: Secret;
  watch?: FileWatch;
  /** Open leases holding it. */
  users: number;
  /** Asked for outside any lease: held for the life of the custody. */
  pinned: boolean;
  /** No longer held: a settle still running must not apply or log anything. */
  dropped: boolean;
  settling: boolean;
  /** A change arrived while settling: look again afterwards. */
  dirty: boolean;
  /** The last problem logged, so a file that stays broken is reported once, not on every check. */
  warned?: string;
}

// A writer that truncates and then writes leaves a moment when the file is empty or short. A value is
// taken once two reads this far apart agree; an empty read never replaces a good key in any case.
const SETTLE_MS = 25;
// A file rewritten without pause for this many rounds (~1 s) is taken as it stands then.
const MAX_SETTLE_ROUNDS = 40;
const DEFAULT_POLL_MS = 500;

function sameRead(a: SecretRead, b: SecretRead): boolean {
  return 'value' in a ? 'value' in b && a.value === b.value : 'problem' in b && a.problem === b.problem;
}

/** The process-wide holder of credentials and the watches on their files. */
export class KeyCustody implements SecretHolder {
  readonly #log: Logger;
  readonly #watch: boolean;
  readonly #pollMs: number;
  readonly #held = new Map<string, Held>();
  #closed = false;

  constructor(opts: KeyCustodyOptions) {
    this.#log = opts.log;
    this.#watch = opts.watch;
    this.#pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  }

  /** The secret for a source, held (and watched) for the life of the custody; runtimes use lease(). */
  secret(source: SecretSource, field: string): Secret {
    const held = this.#hold(source, field);
    held.pinned = true;
    return held.secret;
  }

  /** A holder whose credentials are kept until it is released (and no other lease holds them). */
  lease(): CustodyLease {
    const ids = new Set<string>();
    let released = false;
    return {
      secret: (source, field) => {
        // A runtime that has closed has no business holding anything; it gets a read, unwatched.
        if (released || this.#closed) return holdSecret(undefined, source, field);
        const held = this.#hold(source, field);
        if (!ids.has(held.id)) {
          ids.add(held.id);
          held.users++;
        }
        return held.secret;
      },
      release: () => {
        if (released) return;
        released = true;
        for (const id of ids) {
          const held = this.#held.get(id);
          if (!held || --held.users > 0 || held.pinned) continue;
          held.dropped = true;
          held.watch?.close();
          this.#held.delete(id);
        }
      },
    };
  }

  /** How many credentials are held (each file among them with its watch and poll). */
  get size(): number {
    return this.#held.size;
  }

  #hold(source: SecretSource, field: string): Held {
    const id = `${field}\0${source.file ?? ''}\0${source.env ?? ''}`;
    const existing = this.#held.get(id);
    if (existing) return existing;
    const held: Held = { id, secret: new Secret(source, field), users: 0, pinned: false, dropped: false, settling: false, dirty: false };
    // Problems at start reach the log through the runtime's warnings, and /status names them.
    held.secret.apply(held.secret.read());
    held.warned = held.secret.problem;
    if (source.file && this.#watch && !this.#closed) {
      held.watch = watchFileChanges(source.file, () => this.#changed(held), {
        pollMs: this.#pollMs,
        onWatchError: (err) => this.#log.warn({ credential: held.secret.label, err: String(err) }, `cannot watch the credential's directory; polling it every ${this.#pollMs} ms instead`),
      });
    }
    this.#held.set(id, held);
    return held;
  }

  /** Reads every credential again (a reload or SIGHUP: the operator says the files are ready). */
  refreshAll(via: string): void {
    for (const held of this.#held.values()) this.#apply(held, held.secret.read(), via);
  }

  /** Stops every watch; the secrets keep their last values. */
  close(): void {
    this.#closed = true;
    for (const held of this.#held.values()) held.watch?.close();
  }

  #changed(held: Held): void {
    if (this.#closed || held.dropped) return;
    if (held.settling) {
      held.dirty = true;
      return;
    }
    held.settling = true;
    held.dirty = false;
    void this.#settle(held);
  }

  async #settle(held: Held): Promise<void> {
    let previous = held.secret.read();
    for (let round = 1; ; round++) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      if (this.#closed || held.dropped) return;
      const next = held.secret.read();
      if (sameRead(previous, next) || round >= MAX_SETTLE_ROUNDS) {
        this.#apply(held, next, 'file change');
        break;
      }
      previous = next;
    }
    held.settling = false;
    if (held.dirty) this.#changed(held);
  }

  #apply(held: Held, read: SecretRead, via: string): void {
    const before = held.secret.fingerprint;
    const change: SecretChange = held.secret.apply(read);
    const fields = { credential: held.secret.label, via };
    if (change === 'rotated' || change === 'loaded') {
      held.warned = undefined;
      this.#log.info({ ...fields, fingerprint: held.secret.fingerprint, previous: before }, change === 'rotated' ? 'credential rotated' : 'credential loaded');
    } else if (change === 'unchanged' && held.warned) {
      held.warned = undefined;
      this.#log.info({ ...fields, fingerprint: held.secret.fingerprint }, 'credential readable again');
    } else if ((change === 'kept' || change === 'missing') && held.warned !== held.secret.problem) {
      held.warned = held.secret.problem;
      this.#log.warn({ ...fields, problem: held.secret.problem }, change === 'kept' ? 'credential unreadable; keeping the one read before' : 'credential unreadable');
    }
  }
}

/** The custody's (or a lease's) secret for a source, or (without one: unit tests, tools) one read once now. */
export function holdSecret(custody: SecretHolder | undefined, source: SecretSource, field: string): Secret {
  if (custody) return custody.secret(source, field);
  const secret = new Secret(source, field);
  secret.apply(secret.read());
  return secret;
}
