// A credential Warden holds on someone's behalf (an upstream's API key, the agent's token to Warden),
// read from an environment variable or a file such as a mounted secret. The value is swapped in
// place, so whatever holds the Secret reads the current value on every request without being rebuilt,
// and a read that yields nothing usable never replaces a good value: a file caught mid-write (empty,
// or with a stray line break) keeps the key read before until a complete read succeeds.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface SecretSource {
  env?: string;
  file?: string;
}

/** One read of a source: the trimmed value, or why there is none. */
export type SecretRead = { value: string } | { problem: string };

/**
 * What a read did to the held value: loaded (the first value), rotated (a new one), unchanged,
 * kept (the read failed; the previous value stays), missing (the read failed and there is none).
 */
export type SecretChange = 'loaded' | 'rotated' | 'unchanged' | 'kept' | 'missing';

// Secret files are tiny; a big one is the wrong file, and reading it on every change would be waste.
const MAX_SECRET_BYTES = 16 * 1024;

// A header value may hold visible ASCII, spaces and tabs (RFC 9110 §5.5). A line break or control
// character inside a key means a torn write or the wrong file, and would fail every request.
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$/;

/** The first 8 hex digits of the value's SHA-256: names a key in logs without revealing it. */
export function fingerprint(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 8);
}

/** Reads a source once; `field` names it in problems (apiKeyFile, auth.tokenFile). */
export function readSecret(source: SecretSource, field: string): SecretRead {
  let text: string;
  let where: string;
  if (source.file) {
    where = `${field} ${source.file}`;
    try {
      const buf = readFileSync(source.file);
      if (buf.length > MAX_SECRET_BYTES) return { problem: `${where} is ${buf.length} bytes; a credential file holds one key (at most ${MAX_SECRET_BYTES} bytes)` };
      text = buf.toString('utf8');
    } catch (err) {
      return { problem: `cannot read ${where} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
  } else if (source.env) {
    where = `environment variable ${source.env}`;
    text = process.env[source.env] ?? '';
    if (!text.trim()) return { problem: `${where} is not set` };
  } else {
    return { problem: `${field}: no source` };
  }
  // Secret files usually end in a newline (echo, kubectl create secret --from-file).
  const value = text.trim();
  if (!value) return { problem: `${where} is empty` };
  if (!HEADER_SAFE.test(value)) return { problem: `${where} holds a line break or control character, which no header can carry` };
  return { value };
}

/** A credential with its current value; read again by whoever watches its source. */
export class Secret {
  readonly source: SecretSource;
  /** How problems name the source: apiKeyFile, apiKeyEnv, auth.tokenFile, auth.tokenEnv. */
  readonly field: string;
  #value: string | undefined;
  #fingerprint: string | undefined;
  #problem: string | undefined;
  #version = 0;

  constructor(source: SecretSource, field: string) {
    this.source = source;
    this.field = field;
  }

  /** The current value; undefined only when no read has ever succeeded. */
  get value(): string | undefined {
    return this.#value;
  }

  /** Bumped on every change of value, so holders can cache what they derive from it. */
  get version(): number {
    return this.#version;
  }

  get fingerprint(): string | undefined {
    return this.#fingerprint;
  }

  /** Why the value is missing or may be stale (the last read failed); never contains the value. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Where the value comes from, for logs: `apiKeyFile /run/secrets/openai`. */
  get label(): string {
    return `${this.field} ${this.source.file ?? this.source.env}`;
  }

  read(): SecretRead {
    return readSecret(this.source, this.field);
  }

  /** Applies a read; a failed read never replaces a value that worked. */
  apply(read: SecretRead): SecretChange {
    if ('problem' in read) {
      this.#problem = this.#value === undefined ? read.problem : `${read.problem}; still using the value read before (fingerprint ${this.#fingerprint})`;
      return this.#value === undefined ? 'missing' : 'kept';
    }
    this.#problem = undefined;
    if (read.value === this.#value) return 'unchanged';
    const first = this.#value === undefined;
    this.#value = read.value;
    this.#fingerprint = fingerprint(read.value);
    this.#version++;
    return first ? 'loaded' : 'rotated';
  }
}
