import { describe, expect, it } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { EventCorrelator, KubeEventRecorder, type EventSink, type NewEvent } from './events.js';
import { FakeClock } from './fake-clock.js';
import { createLogger, MemorySink } from './logger.js';
import { Redactor, SecretRegistry } from './redact.js';

class RecordingSink implements EventSink {
  readonly created: NewEvent[] = [];
  readonly series: Array<{ name: string; count: number; lastObservedTime: number }> = [];
  failCreate = false;
  goneOnUpdate = false;

  async create(e: NewEvent): Promise<void> {
    if (this.failCreate) throw Object.assign(new Error('Forbidden'), { statusCode: 403 });
    this.created.push(e);
  }

  async updateSeries(_ns: string, name: string, s: { count: number; lastObservedTime: number }): Promise<void> {
    if (this.goneOnUpdate) throw Object.assign(new Error('Not Found'), { statusCode: 404 });
    this.series.push({ name, ...s });
  }
}

const es: KubernetesObject = {
  apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
  metadata: { name: 'web', namespace: 'shop', uid: 'u-1', resourceVersion: '42' },
};

function setup(registry = new SecretRegistry()) {
  const clock = new FakeClock();
  const sink = new RecordingSink();
  const logs = new MemorySink();
  const recorder = new KubeEventRecorder({
    sink, clock, reportingInstance: 'lockstep-0', logger: createLogger({ sink: logs, clock }), redactor: new Redactor(registry),
  });
  return { clock, sink, recorder, logs };
}

describe('KubeEventRecorder', () => {
  it('creates an events.k8s.io Event describing the object', async () => {
    const { clock, sink, recorder } = setup();
    recorder.record(es, 'Warning', 'InvalidPeer', 'peer shop/db does not exist');
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    const e = sink.created[0]!;
    expect(e).toMatchObject({
      namespace: 'shop', type: 'Warning', reason: 'InvalidPeer', action: 'Reconcile', note: 'peer shop/db does not exist',
      eventTime: clock.now(), reportingController: 'lockstep.dev/operator', reportingInstance: 'lockstep-0',
      regarding: { apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService', name: 'web', namespace: 'shop', uid: 'u-1', resourceVersion: '42' },
    });
    expect(e.name).toMatch(/^web\.[0-9a-f]+$/);
  });

  it('folds repeats within the window into one Event with a growing series count', async () => {
    const { clock, sink, recorder } = setup();
    recorder.record(es, 'Warning', 'IssuerNotReady', 'issuer ca is not ready');
    await recorder.flush();
    await clock.advance(60_000);
    recorder.record(es, 'Warning', 'IssuerNotReady', 'issuer ca is not ready');
    await recorder.flush();
    await clock.advance(60_000);
    recorder.record(es, 'Warning', 'IssuerNotReady', 'issuer ca is not ready');
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    expect(sink.series.map((s) => s.count)).toEqual([2, 3]);
    expect(sink.series.at(-1)).toMatchObject({ name: sink.created[0]!.name, lastObservedTime: clock.now() });
  });

  it('coalesces a burst into one create and one series update carrying the final count', async () => {
    const { sink, recorder } = setup();
    for (let i = 0; i < 5; i++) recorder.record(es, 'Normal', 'Applied', 'applied 4 objects');
    await recorder.flush();
    expect(sink.created).toHaveLength(1);
    expect(sink.series.map((s) => s.count)).toEqual([5]);
  });

  it('starts a new Event after the window, and keeps different reasons, notes, types or objects apart', async () => {
    const { clock, sink, recorder } = setup();
    recorder.record(es, 'Warning', 'A', 'x');
    recorder.record(es, 'Warning', 'B', 'x');
    recorder.record(es, 'Warning', 'A', 'y');
    recorder.record(es, 'Normal', 'A', 'x');
    recorder.record({ ...es, metadata: { ...es.metadata, uid: 'u-2' } }, 'Warning', 'A', 'x');
    await recorder.flush();
    expect(sink.created).toHaveLength(5);
    await clock.advance(10 * 60_000 + 1);
    recorder.record(es, 'Warning', 'A', 'x');
    await recorder.flush();
    expect(sink.created).toHaveLength(6);
    expect(sink.series).toHaveLength(0);
    expect(new Set(sink.created.map((e) => e.name)).size).toBe(6);
  });

  it('redacts and bounds the note', async () => {
    const registry = new SecretRegistry();
    registry.register('hunter2-hunter2-hunter2');
    const { sink, recorder } = setup(registry);
    recorder.record(es, 'Warning', 'DecryptFailed', 'value hunter2-hunter2-hunter2 rejected, token=abc123xyz');
    recorder.record(es, 'Warning', 'Long', 'é'.repeat(2000));
    await recorder.flush();
    expect(sink.created[0]!.note).toBe('value [REDACTED] rejected, token=[REDACTED]');
    expect(Buffer.byteLength(sink.created[1]!.note)).toBeLessThanOrEqual(1024);
  });

  it('starts over when the Event has expired, and never throws when the API refuses', async () => {
    const { sink, recorder, logs } = setup();
    recorder.record(es, 'Warning', 'A', 'x');
    await recorder.flush();
    sink.goneOnUpdate = true;
    recorder.record(es, 'Warning', 'A', 'x');
    await recorder.flush();
    sink.goneOnUpdate = false;
    recorder.record(es, 'Warning', 'A', 'x');
    await recorder.flush();
    expect(sink.created).toHaveLength(2);

    sink.failCreate = true;
    expect(() => recorder.record(es, 'Warning', 'B', 'y')).not.toThrow();
    await recorder.flush();
    expect(logs.records().some((r) => r['msg'] === 'recording event failed' && r['reason'] === 'Forbidden')).toBe(true);
    sink.failCreate = false;
    recorder.record(es, 'Warning', 'B', 'y');
    await recorder.flush();
    expect(sink.created.map((e) => e.reason)).toEqual(['A', 'A', 'B']);
  });

  it('puts Events about cluster-scoped objects in the default namespace', async () => {
    const { sink, recorder } = setup();
    recorder.record({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'enc', uid: 'u-9' } }, 'Normal', 'Created', 'x');
    await recorder.flush();
    expect(sink.created[0]!.namespace).toBe('default');
  });
});

describe('EventCorrelator', () => {
  it('expires entries a window after their last occurrence and evicts the least recently seen', () => {
    const c = new EventCorrelator<{ count: number; lastSeen: number }>(1000, 2);
    const mk = (now: number) => () => ({ count: 1, lastSeen: now });
    expect(c.observe('a', 0, mk(0)).correlation).toEqual({ kind: 'new' });
    expect(c.observe('a', 900, mk(900)).correlation).toEqual({ kind: 'repeat', count: 2 });
    expect(c.observe('a', 1800, mk(1800)).correlation).toEqual({ kind: 'repeat', count: 3 });
    expect(c.observe('a', 2801, mk(2801)).correlation).toEqual({ kind: 'new' });
    c.observe('b', 2802, mk(2802));
    c.observe('a', 2803, mk(2803));
    c.observe('c', 2804, mk(2804));
    expect(c.size()).toBe(2);
    expect(c.lookup('b', 2805)).toBeUndefined();
    expect(c.lookup('a', 2805)?.count).toBe(2);
  });
});
