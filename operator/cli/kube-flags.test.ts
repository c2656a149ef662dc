import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { clusterFailure, contextNamespace, extractKubeFlags, loadKubeConfig } from './kube-flags.js';

const dir = mkdtempSync(join(tmpdir(), 'kube-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const kubeconfig = stringify({
  apiVersion: 'v1', kind: 'Config', 'current-context': 'a',
  clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
  users: [{ name: 'u', user: { token: 't' } }],
  contexts: [{ name: 'a', context: { cluster: 'c', user: 'u' } }, { name: 'b', context: { cluster: 'c', user: 'u', namespace: 'shop' } },
    { name: 'lost', context: { cluster: 'gone', user: 'u' } }],
});

describe('extractKubeFlags', () => {
  it('takes the cluster flags from anywhere on the line, in both spellings', () => {
    expect(extractKubeFlags(['status', '--context=b', '-n', 'x', '--kubeconfig', 'k', '--request-timeout', '1m'])).toEqual({
      flags: { kubeconfig: 'k', context: 'b', requestTimeoutMs: 60_000 }, rest: ['status', '-n', 'x'],
    });
    expect(extractKubeFlags(['seal', '--', '--context', 'x']).rest).toEqual(['seal', '--', '--context', 'x']);
    expect(extractKubeFlags(['status', '--request-timeout=30']).flags.requestTimeoutMs).toBe(30_000);
  });

  it('refuses a flag without a value or a malformed timeout as a usage error (exit 2)', () => {
    expect(() => extractKubeFlags(['status', '--context'])).toThrow(expect.objectContaining({ exitCode: 2 }));
    expect(() => extractKubeFlags(['status', '--request-timeout', 'soon'])).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});

describe('loadKubeConfig', () => {
  it('loads the file, switches to --context, and takes the namespace from the context', () => {
    const path = file('ok', kubeconfig);
    expect(contextNamespace(loadKubeConfig({ kubeconfig: path }, {}))).toBe('default');
    const kc = loadKubeConfig({ context: 'b' }, { KUBECONFIG: path });
    expect(kc.getCurrentContext()).toBe('b');
    expect(contextNamespace(kc)).toBe('shop');
  });

  it('says what is wrong with a missing, empty or malformed kubeconfig (exit 3), never a TypeError', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ KUBECONFIG: join(dir, 'none') }, /KUBECONFIG names .*none, which does not exist/],
      [{ KUBECONFIG: file('empty', '') }, /kubeconfig .*empty is empty: expected a YAML mapping/],
      [{ KUBECONFIG: file('list', '- a\n- b\n') }, /is not a kubeconfig/],
      [{ KUBECONFIG: file('yaml', 'clusters: [\n') }, /cannot be read/],
      [{ KUBECONFIG: file('clusters', 'clusters: {a: 1}\n') }, /clusters must be a list/],
      [{ KUBECONFIG: file('nocontext', stringify({ clusters: [], contexts: [], users: [] })) }, /has no current-context; pass --context; it defines no contexts/],
      [{ HOME: dir }, /no kubeconfig: ~\/.kube\/config does not exist/],
    ];
    for (const [env, message] of cases) {
      expect(() => loadKubeConfig({}, env)).toThrow(expect.objectContaining({ exitCode: 3, message: expect.stringMatching(message) }));
    }
  });

  it('names the contexts when --context is unknown, and a context whose cluster is missing', () => {
    const path = file('ctx', kubeconfig);
    expect(() => loadKubeConfig({ kubeconfig: path, context: 'x' }, {})).toThrow(/context "x" not found in kubeconfig .*; contexts: a, b, lost/);
    expect(() => loadKubeConfig({ kubeconfig: path, context: 'lost' }, {})).toThrow(/names cluster "gone", which it does not define/);
  });
});

describe('clusterFailure', () => {
  it('tells unreachable, timed-out and refused-credential failures from API answers', () => {
    expect(clusterFailure(Object.assign(new Error('request to https://x failed, reason: connect ECONNREFUSED'), { name: 'FetchError', code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(clusterFailure(Object.assign(new Error('aborted'), { name: 'AbortError' }), 500)).toMatch(/within the request timeout \(500 ms\)/);
    expect(clusterFailure({ code: 401, body: '', headers: {} })).toMatch(/401 Unauthorized/);
    expect(clusterFailure({ code: 403, body: '', headers: {} })).toBeUndefined();
    expect(clusterFailure(new Error('boom'))).toBeUndefined();
  });
});
