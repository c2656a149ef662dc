import { describe, expect, it } from '@jest/globals';
import { noteWrite, observeFirstWrite, resourceOfPath } from './first-write.js';

describe('observeFirstWrite', () => {
  it('reports only the first write of the reconcile, and nothing written outside or after it', async () => {
    const seen: string[] = [];
    noteWrite('secrets');
    let late: (() => void) | undefined;
    await observeFirstWrite((r) => seen.push(r), async () => {
      await Promise.resolve();
      noteWrite('networkpolicies');
      noteWrite('certificates');
      late = () => noteWrite('events');
    });
    late?.();
    expect(seen).toEqual(['networkpolicies']);
  });

  it('keeps concurrent reconciles apart', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = observeFirstWrite((r) => seen.push(`a:${r}`), async () => {
      await gate;
      noteWrite('networkpolicies');
    });
    const b = observeFirstWrite((r) => seen.push(`b:${r}`), async () => {
      noteWrite('certificates');
      release();
    });
    await Promise.all([a, b]);
    expect(seen).toEqual(['b:certificates', 'a:networkpolicies']);
  });
});

describe('resourceOfPath', () => {
  it('names the resource and subresource, never the object', () => {
    expect(resourceOfPath('https://127.0.0.1:6443/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/api-allow?fieldManager=x&force=true')).toBe('networkpolicies');
    expect(resourceOfPath('/apis/lockstep.dev/v1alpha1/namespaces/shop/encryptedservices/api/status')).toBe('encryptedservices/status');
    expect(resourceOfPath('/api/v1/namespaces/shop/configmaps')).toBe('configmaps');
    expect(resourceOfPath('/api/v1/namespaces/shop')).toBe('namespaces');
    expect(resourceOfPath('/apis/storage.k8s.io/v1/storageclasses/lockstep-longhorn-1')).toBe('storageclasses');
    expect(resourceOfPath('/apis/events.k8s.io/v1/namespaces/shop/events')).toBe('events');
  });
});
