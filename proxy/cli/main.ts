// The CLI dispatcher: `warden <command> [subcommand] [flags]`. Exit codes: 0 ok, 1 check failed,
// 2 usage or config error; every error names what was wrong and where.
import { ConfigError, PolicyError, UsageError } from '../errors.ts';

const USAGE = `usage: warden <command>

  proxy --policy FILE [--listen HOST:PORT] [--admin-listen HOST:PORT] [--inbound-listen HOST:PORT]
        [--shutdown-grace-ms N] [--client-header-timeout-ms N] [--client-body-timeout-ms N] [--no-watch]
                       run the sidecar (env: WARDEN_POLICY, WARDEN_LISTEN, WARDEN_ADMIN_LISTEN,
                       WARDEN_INBOUND_LISTEN, WARDEN_SHUTDOWN_GRACE_MS, WARDEN_CLIENT_HEADER_TIMEOUT_MS,
                       WARDEN_CLIENT_BODY_TIMEOUT_MS, WARDEN_LOG_LEVEL); --inbound-listen takes calls from
                       other agents' sidecars; drains in-flight calls for --shutdown-grace-ms (25000) on
                       SIGTERM; a client must send its headers within --client-header-timeout-ms (30000)
                       and its body within --client-body-timeout-ms (60000); --no-watch stops watching
                       the policy and key files (SIGHUP and POST /policy/reload still reload)
  demo                 fake upstream + sidecar + scripted agent; shows each protection; no keys needed
  policy check FILE... lint policies: exit 0 clean, 1 problems (file:line:col: message)
  audit verify [--db PATH] [--checkpoint FILE]... [--key KEY]...
                       verify the audit log's hash chain and signed checkpoints: exit 0 intact,
                       1 with the first bad seq and why (default PATH: $WARDEN_DATA_DIR/audit.db),
                       2 when nothing could be checked (not a readable audit log, a collector down);
                       checkpoints must be signed by their run's key (its log_open names it) and,
                       without --key, share one signer; with --key, be signed by a key given (a
                       checkpoint's public_key, a base64 or PEM Ed25519 key, or a file of them)
  audit verify --collector URL [--token T] [--key KEY]...
                       verify every log the collector holds (exit 1 on a broken chain or an alert)
  audit verify --bundle FILE [--key KEY]...
                       verify an export bundle offline (inclusion proofs against its checkpoint,
                       and with --key, that one of those keys signed it)
  audit export --agent ID --from TIME --to TIME [--db PATH] [--out FILE]
                       one agent's records in a window, with inclusion proofs, as JSONL; TIME is an
                       ISO 8601 date or date-time (UTC without an offset), --from before --to
  audit decrypt [--db PATH] [--seq N]
                       records with encrypted fields decrypted (keys: WARDEN_AUDIT_KEYS or
                       WARDEN_AUDIT_KEYS_FILE)
  audit reship [--db PATH] [--collector URL] [--token T]
                       send the collector again the batches it refused (dead_letters; URL and token
                       default to WARDEN_COLLECTOR_URL and WARDEN_COLLECTOR_TOKEN): exit 0 when
                       it now holds them all, 1 naming each range it still refuses, 2 when the
                       collector cannot be reached or refuses the token
  audit checkpoint [--db PATH]
                       print the latest signed checkpoint (hold it elsewhere to detect truncation)
  collector --store sqlite:PATH [--listen HOST:PORT] [--tokens FILE] [--max-body-bytes N]
                       run the central collector (env: WARDEN_COLLECTOR_STORE, WARDEN_COLLECTOR_LISTEN,
                       WARDEN_COLLECTOR_TOKENS=fleet=token,…, WARDEN_COLLECTOR_MAX_BODY_BYTES; the
                       largest batch body, sent or gunzipped, defaults to 134217728 = 128 MiB)
  memory list|search|delete --agent ID --session ID [--query TEXT] [--data-dir DIR]
                       a session's context memory (JSON lines); delete erases it (right to erasure)
  eval run --pact FILE --target URL [--json] [--concurrency N] [--trials N] [--header 'K: V']...
           [--api-key KEY] [--capability NAME]... [--model M]
                       run a pact's cases against an OpenAI base URL (…/v1) or an Anthropic one: exit 0
                       when every capability meets its threshold, 1 when one misses it (with its 95%
                       interval), 2 for bad flags, a bad pact (file:line:col) or a target no trial could
                       use; the key is --api-key, else WARDEN_EVAL_API_KEY, else OPENAI_API_KEY or
                       ANTHROPIC_API_KEY (none needed through a Warden sidecar)
  eval baseline --pact FILE --target URL [--out FILE] [--data-dir DIR] [--json] [target flags as run]
                       certify a baseline (trials × looks per case): stored as the agent's active one in
                       DIR/evals.db and written to FILE (default: next to the pact, NAME.baseline.json)
                       for the policy's evals.baseline; prints each capability's value, interval and MDE
  eval baseline --admin URL [--token T]
                       ask a running sidecar to certify its pact
  eval status --pact FILE --target URL --baseline FILE [--json] [target flags as run]
                       the sequential drift decision against a baseline: exit 1 on confirmed drift,
                       0 for no drift or inconclusive (add cases or trials to decide)
  eval status --admin URL [--json]
                       a sidecar's pact, baseline, last evaluation, open drift, pins and trust score;
                       exit 1 while it reports open drift
  eval accept [--unpin] | rollback | remediate [--admin URL] [--token T] [--by NAME] [--note TEXT] [--json]
                       answer drift on a sidecar: re-certify as served now, pin the baseline's snapshot,
                       or send the drift report to evals.remediate; exit 0 done, 1 refused (no baseline,
                       nothing to act on), 2 usage, no valid admin token or an unreachable sidecar
  escalations list [--state S] [--json] | show ID
  escalations approve ID [--args JSON] [--choice N] [--by NAME] [--note TEXT]
  escalations reject ID [--by NAME] [--note TEXT]
                       the human-review queue, through the sidecar's admin API (--admin URL, env
                       WARDEN_ADMIN_URL, default http://127.0.0.1:15101) or on the file (--data-dir DIR);
                       approve may edit a tool call's arguments (--args) or pick a model answer (--choice);
                       decisions over the API send the admin token (--token T, env WARDEN_ADMIN_TOKEN or
                       WARDEN_ADMIN_TOKEN_FILE); exit 0 ok, 1 refused (unknown id, already decided,
                       invalid arguments), 2 usage or no valid admin token
  identity [--data-dir DIR] [--agent ID] [--json]
                       this sidecar's agent identity public key (created if absent), for the
                       agents.trust section of the agents it calls
  deploy inject --cluster C --service S [--image IMAGE@sha256:…] [--allow-unpinned] [--dry-run]
         [--policy FILE | --policy-path PATH] [--collector-url URL] [--collector-token-secret ARN]
         [--agent-id ID] [--agent-version V] [--agent-container NAME]... [--sidecar-memory MIB]
         [--stop-timeout S]
                       add the sidecar to an ECS service's task definition (agents get OPENAI_BASE_URL and
                       ANTHROPIC_BASE_URL pointing at it and wait for it to be healthy), register it and
                       update the service; --policy sends a local policy inline (WARDEN_POLICY_INLINE), else
                       the image's; --agent-id/--agent-version outrank the policy's agent (WARDEN_AGENT_ID,
                       WARDEN_AGENT_VERSION); --image is needed the first time, later the sidecar's image is
                       kept; re-running replaces the sidecar, never duplicates it; --dry-run prints
                       the task definition diff; exit 1 when the task definition is refused (awsvpc needed,
                       ports 15100/15101 free, a valid Fargate size with the sidecar), nothing registered
  deploy remove --cluster C --service S [--dry-run]
                       register the task definition without Warden (every edit undone) and update the service
  deploy status --cluster C --service S
                       the service's deployments, its tasks and each task's sidecar health; exit 1
                       when a task's sidecar is UNHEALTHY
                       (AWS: the SDK's usual credentials, AWS_REGION and AWS_ENDPOINT_URL_ECS)
  help [COMMAND]       this text, or only COMMAND's part of it
`;

/** One command's entries in USAGE (an entry starts at a line indented by two spaces), or undefined. */
function usageOf(command: string): string | undefined {
  const entries: string[][] = [];
  for (const line of USAGE.split('\n').slice(2)) {
    if (/^ {2}\S/.test(line)) entries.push([line]);
    else if (line.trim() && entries.length > 0) entries.at(-1)!.push(line);
  }
  const own = entries.filter((e) => e[0].trim().split(/\s+/)[0] === command);
  return own.length > 0 ? `usage: warden ${own.map((e) => e.join('\n').trimStart()).join('\n  warden ')}\n` : undefined;
}

type Command = (args: string[]) => Promise<number>;

// Each command's modules load when it runs: the sidecar (`proxy`) then never holds the collector's
// dashboard, the PostgreSQL driver, the demo's fake servers or the AWS SDK in its heap.
const COMMANDS: Record<string, Command> = {
  proxy: async (args) => (await import('./proxy-command.ts')).proxyCommand(args),
  demo: async (args) => (await import('./demo-command.ts')).demoCommand(args),
  policy: async (args) => {
    if (args[0] !== 'check') throw new UsageError(`unknown policy subcommand "${args[0] ?? ''}" (expected: check)`);
    return (await import('./policy-check.ts')).policyCheckCommand(args.slice(1), process.stdout, process.stderr);
  },
  audit: async (args) => (await import('./audit-command.ts')).auditCommand(args, process.stdout, process.stderr),
  collector: async (args) => (await import('./collector-command.ts')).collectorCommand(args),
  memory: async (args) => (await import('./memory-command.ts')).memoryCommand(args, process.stdout),
  escalations: async (args) => (await import('./escalations-command.ts')).escalationsCommand(args, process.stdout, process.stderr),
  eval: async (args) => (await import('./eval-command.ts')).evalCommand(args, process.stdout, process.stderr),
  identity: async (args) => (await import('./identity-command.ts')).identityCommand(args, process.stdout),
  deploy: async (args) => (await import('./deploy-command.ts')).deployCommand(args, process.stdout, process.stderr),
  help: async (args) => {
    if (args[0] === undefined) process.stdout.write(USAGE);
    else process.stdout.write(usageOf(args[0]) ?? (() => {
      throw new UsageError(`no command "${args[0]}" to show the usage of`);
    })());
    return 0;
  },
};

/** Runs one CLI invocation and returns its exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name === undefined || name === '--help' || name === '-h' ? COMMANDS.help : COMMANDS[name];
  try {
    if (!command) throw new UsageError(`unknown command "${name}"`);
    return await command(args);
  } catch (err) {
    if (err instanceof UsageError) {
      // One line to say what was wrong and one to say where the usage is: the whole text buries the
      // first under ninety lines.
      const help = command && command !== COMMANDS.help && usageOf(name) ? `warden help ${name}` : 'warden help';
      process.stderr.write(`warden: ${err.message}\n(run \`${help}\` for the usage)\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`warden: ${err.message}\n`);
      return 2;
    }
    if (err instanceof PolicyError) {
      process.stderr.write(`${err.problems.join('\n')}\nwarden: the policy is invalid; nothing was started\n`);
      return 2;
    }
    throw err;
  }
}
