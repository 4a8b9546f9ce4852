// Opening the sidecar's audit log from a policy: data directory and signing key, field protection
// keys, the collector to ship to, and the observer that feeds metrics and logs. A policy whose audit
// settings the environment cannot honour (no key, an unwritable directory) never starts.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Policy } from '../../policies/types.ts';
import { ConfigError, PolicyError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { openAuditLog, type AuditLog } from './audit-log.ts';
import type { EcsIdentity } from './ecs-identity.ts';
import { loadKeyring, type ProtectionConfig } from './field-protection.ts';
import { loadSigningKey } from './signing.ts';
import type { SpaceConfig } from './writer-protocol.ts';
import { storeAdvice } from '../store-advice.ts';

/** The agent identity records carry: the policy's id and version, and the ECS task's when known. */
export function agentOf(policy: Policy, identity: EcsIdentity | undefined): Record<string, string | undefined> {
  return { id: policy.agent.id, version: policy.agent.version, ...identity };
}

/** The policy's field protection with its keys; a policy that asks for protection without keys never starts. */
function protectionFor(policy: Policy): ProtectionConfig {
  const { encrypt, mask } = policy.audit;
  const keyring = encrypt.length > 0 ? loadKeyring() : undefined;
  if (encrypt.length > 0 && !keyring) {
    throw new PolicyError([`${policy.source.file}: audit.encrypt is set, but there is no key: set WARDEN_AUDIT_KEYS=kid:base64 (32 bytes) or WARDEN_AUDIT_KEYS_FILE`]);
  }
  const hmacKey = process.env.WARDEN_AUDIT_HMAC_KEY;
  if (mask.some((m) => m.as === 'hmac') && (!hmacKey || Buffer.from(hmacKey, 'base64').length < 16)) {
    throw new PolicyError([`${policy.source.file}: audit.mask uses hmac, but WARDEN_AUDIT_HMAC_KEY (base64, at least 16 bytes) is not set`]);
  }
  return {
    encrypt, mask, hmacKey,
    keyring: keyring && { activeKid: keyring.activeKid, keys: [...keyring.keys].map(([kid, key]) => [kid, key.toString('base64')]) },
  };
}

/** The collector to ship to, from WARDEN_COLLECTOR_URL and WARDEN_COLLECTOR_TOKEN. */
function collectorFromEnv(): { url: string; token: string } | undefined {
  const url = process.env.WARDEN_COLLECTOR_URL;
  if (!url) return undefined;
  return { url, token: process.env.WARDEN_COLLECTOR_TOKEN ?? '' };
}

/** The policy's disk quota and retention, as the writer takes them (at start and on each reload). */
export function spaceConfigOf(policy: Policy): SpaceConfig {
  return { quotaBytes: policy.audit.quotaBytes, retainShippedMs: policy.audit.retainShippedMs };
}

/** Opens the audit log in `dataDir`; its first record says which policy and Warden version started it. */
export async function startAudit(policy: Policy, dataDir: string, metrics: Metrics, log: Logger, identity: EcsIdentity | undefined, version: string): Promise<AuditLog> {
  const path = join(dataDir, 'audit.db');
  let key;
  try {
    mkdirSync(dataDir, { recursive: true });
    key = loadSigningKey(dataDir);
  } catch (err) {
    throw new ConfigError(`cannot prepare the audit log in ${dataDir}: ${(err as Error).message} (${storeAdvice(err)})`, { cause: err });
  }
  const audit = await openAuditLog({
    path, key, strict: policy.audit.durability === 'strict',
    checkpointEveryRecords: policy.audit.checkpoint.everyRecords, checkpointEveryMs: policy.audit.checkpoint.everyMs,
    collector: collectorFromEnv(),
    protection: protectionFor(policy),
    space: spaceConfigOf(policy),
    openEntry: { event: 'log_open', ts: new Date().toISOString(), agent: agentOf(policy, identity), warden_version: version, policy: { file: policy.source.file, sha256: policy.source.sha256 } },
    observer: {
      committed(events, seconds) {
        metrics.auditCommitDuration.observe(seconds);
        for (const [event, n] of Object.entries(events)) metrics.auditRecords.inc({ event }, n);
      },
      failed(code, message) {
        metrics.auditCommitFailures.inc({ code });
        log.error({ code, message }, 'audit commit failed');
      },
      warning: (message) => log.warn(message),
      unshipped: (count) => metrics.auditUnshipped.set(count),
      pruned: (records) => metrics.auditPruned.inc(records),
      space(report, previous) {
        if (report.quotaBytes) metrics.auditQuotaUsed.set(report.usedBytes / report.quotaBytes);
        if (report.level === previous?.level) return;
        const fields = { usedBytes: report.usedBytes, quotaBytes: report.quotaBytes, freeBytes: report.freeBytes };
        if (report.level === 'full') log.error(fields, `audit log full: new calls are refused until there is room: ${report.reason}`);
        else if (report.level === 'warn') log.warn(fields, `audit log space is running low: ${report.reason}`);
        else if (previous) log.info(fields, 'audit log space is back to normal');
      },
      shipFailed(reason, detail) {
        metrics.auditShipFailures.inc({ reason });
        log.warn({ reason, detail }, 'audit shipping failed');
      },
    },
  }).catch((err: Error) => {
    throw new ConfigError(`cannot open the audit log ${path}: ${err.message} (${storeAdvice(err)})`, { cause: err });
  });
  metrics.auditPath = path;
  log.info({ path, logId: audit.logId, durability: policy.audit.durability, signingKey: key.source }, 'audit log open');
  return audit;
}
