// The sanitize section compiled once per policy: its detectors (built-ins as listed, then custom
// patterns) and, per recipient, what each class becomes. `block` is the rule sensitive_output under
// the policy's mode: in monitor and research modes (or with the rule at log) a blocked class passes
// and is only recorded. The hash key is a keyed HMAC's, so a token cannot be reversed by hashing
// every phone number or SSN (small spaces an unkeyed hash would give away), yet stays stable for one
// key: from hashKeyEnv, so tokens match across sidecars and restarts, or random per process (which
// /status reports, since tokens then stop matching after a restart).
import { randomBytes } from 'node:crypto';
import type { Policy, SanitizeAction, SanitizeConfig } from '../../policies/types.ts';
import { decide } from '../tools/violations.ts';
import { customDetector } from './custom.ts';
import type { Detector } from './detector.ts';
import { BUILTIN_DETECTORS } from './detectors/index.ts';
import type { Engine, Treatment } from './engine.ts';

const PROCESS_KEY = randomBytes(32);

export interface CompiledSanitizer {
  readonly detectors: readonly Detector[];
  /** The engine for a call to this recipient (x-warden-recipient); unknown or absent: the defaults. */
  engineFor(recipient: string | undefined): Engine;
}

function hashKeyText(config: SanitizeConfig): string | undefined {
  return config.hashKeyEnv ? process.env[config.hashKeyEnv] : undefined;
}

/** Problems that make the sidecar yellow on /status: hash tokens under a random per-process key. */
export function sanitizeWarnings(policy: Policy): string[] {
  const config = policy.sanitize;
  if (!config || hashKeyText(config)) return [];
  const hashes = config.action === 'hash' || Object.values(config.actions).includes('hash')
    || Object.values(config.recipients).some((r) => Object.values(r.actions).includes('hash'));
  if (!hashes) return [];
  const why = config.hashKeyEnv ? `${config.hashKeyEnv} is unset or empty` : 'sanitize.hashKeyEnv is not set';
  return [`sanitize: hash tokens use a random key made at start (${why}), so a value's token changes on restart and differs between sidecars`];
}

/** Compiles a policy's sanitize section; the policy must have one. */
export function compileSanitizer(policy: Policy): CompiledSanitizer {
  const config = policy.sanitize!;
  const detectors = Object.freeze([
    ...BUILTIN_DETECTORS.filter((d) => config.detectors.includes(d.name)),
    ...config.custom.map(customDetector),
  ]);
  const keyText = hashKeyText(config);
  const hashKey = keyText ? Buffer.from(keyText) : PROCESS_KEY;
  const blocks = decide(policy, { kind: 'sensitive_output', tool: '(model output)', message: 'probe' }).action === 'block';
  const engines = new Map<string, Engine>();

  function build(recipient: string | undefined): Engine {
    const r = recipient === undefined ? undefined : config.recipients[recipient];
    const allowed = new Set(r?.allow ?? []);
    const treatments = new Map<string, Treatment>(detectors.map((d) => {
      if (allowed.has(d.name)) return [d.name, 'allow'];
      const action: SanitizeAction = r?.actions[d.name] ?? config.actions[d.name] ?? config.action;
      return [d.name, action === 'block' && !blocks ? 'log' : action];
    }));
    return Object.freeze({ detectors, hashKey, treatment: (name: string) => treatments.get(name) ?? 'mask' });
  }

  return {
    detectors,
    engineFor(recipient) {
      const key = recipient !== undefined && Object.hasOwn(config.recipients, recipient) ? recipient : '';
      let engine = engines.get(key);
      if (!engine) engines.set(key, (engine = build(key === '' ? undefined : key)));
      return engine;
    },
  };
}
