import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';

// client-node 1.4 makes a new https.Agent for every request (KubeConfig.applySecurityAuthentication),
// so every request opened its own TLS connection and parsed the CA, client certificate and key
// again: with 200 services converging that was a quarter of the operator's CPU, and a handshake
// of latency on every read and write. Here requests with the same TLS settings share one
// keep-alive agent. Watches (applyToFetchOptions) keep their own connections.

/** Idle pooled connections are closed after this long, well before the API server's own idle
 * timeout (90 s), so a request never lands on a connection the server is closing. */
const IDLE_MS = 30_000;

const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** A digest of what makes a connection (credentials included): the key material stays in the agent. */
function settingsKey(agent: http.Agent | https.Agent): string {
  const options = (agent as { options?: Record<string, unknown> }).options ?? {};
  const hash = createHash('sha256').update(agent instanceof https.Agent ? 'https' : 'http');
  for (const field of TLS_FIELDS) {
    const value = options[field];
    hash.update(`\0${field}=`);
    if (value === undefined) continue;
    for (const part of Array.isArray(value) ? value : [value]) hash.update(Buffer.isBuffer(part) ? part : String(part)).update('\0');
  }
  return hash.digest('hex');
}

/** Agents by settingsKey; at most one: credentials that change replace it. */
export type AgentPool = Map<string, http.Agent>;

export class ConnectionReusingKubeConfig extends KubeConfig {
  /** Shared by the copies made of this config (leaderGuardedKubeConfig). */
  readonly agents: AgentPool;

  constructor(agents?: AgentPool) {
    super();
    this.agents = agents ?? new Map();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getAgent();
    // Proxy agents (and anything else) keep client-node's behaviour.
    if (!made || (made.constructor !== https.Agent && made.constructor !== http.Agent)) return;
    const key = settingsKey(made);
    let agent = this.agents.get(key);
    if (!agent) {
      const options = { ...(made as { options?: https.AgentOptions }).options, keepAlive: true, timeout: IDLE_MS };
      agent = made instanceof https.Agent ? new https.Agent(options) : new http.Agent(options);
      // Rotated credentials make a new agent. The old one is dropped, not destroyed: requests in
      // flight on it finish, and its idle connections close after IDLE_MS.
      this.agents.clear();
      this.agents.set(key, agent);
    }
    context.setAgent(agent);
  }

  /** Closes the pooled connections (an operator stopping; tests). */
  closeConnections(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

/** A copy of `kc` whose API clients share connections (see above). */
export function reusingConnections(kc: KubeConfig): ConnectionReusingKubeConfig {
  const copy = new ConnectionReusingKubeConfig();
  copy.loadFromOptions({ clusters: kc.clusters, contexts: kc.contexts, users: kc.users, currentContext: kc.currentContext });
  return copy;
}
