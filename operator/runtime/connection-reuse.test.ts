import { describe, expect, it } from '@jest/globals';
import * as https from 'node:https';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { reusingConnections } from './connection-reuse.js';
import { leaderGuardedKubeConfig } from './leader-guard.js';

const config = (cert: string): KubeConfig => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from('ca').toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', certData: Buffer.from(cert).toString('base64'), keyData: Buffer.from('key').toString('base64') }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
};

async function agentOf(kc: KubeConfig, method = HttpMethod.GET): Promise<https.Agent> {
  const ctx = new RequestContext('https://127.0.0.1:6443/api/v1/namespaces', method);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getAgent() as https.Agent;
}

describe('reusingConnections', () => {
  it('gives every request with the same credentials one keep-alive agent', async () => {
    const kc = reusingConnections(config('cert-a'));
    const first = await agentOf(kc);
    expect(await agentOf(kc)).toBe(first);
    expect((first as https.Agent & { keepAlive: boolean }).keepAlive).toBe(true);
    expect(first.options.cert).toEqual(Buffer.from('cert-a'));
  });

  it('makes a new agent when the credentials change', async () => {
    const kc = reusingConnections(config('cert-a'));
    const before = await agentOf(kc);
    kc.users[0] = { ...kc.users[0]!, certData: Buffer.from('cert-b').toString('base64') };
    const after = await agentOf(kc);
    expect(after).not.toBe(before);
    expect(after.options.cert).toEqual(Buffer.from('cert-b'));
  });

  it('shares the agent with the leader-guarded copy the writers use', async () => {
    const kc = reusingConnections(config('cert-a'));
    const writer = leaderGuardedKubeConfig(kc, () => true, 'lockstep-test');
    expect(await agentOf(writer, HttpMethod.PATCH)).toBe(await agentOf(kc, HttpMethod.GET));
  });
});
