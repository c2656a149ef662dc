import { V1MicroTime, type EventsV1Api, type EventsV1Event } from '@kubernetes/client-node';
import type { EventSink, NewEvent } from './events.js';

/** Writes events.k8s.io/v1 Events. eventTime and series.lastObservedTime are MicroTime. */
export function kubeEventSink(api: EventsV1Api): EventSink {
  return {
    async create(e: NewEvent) {
      const body: EventsV1Event = {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: e.name, namespace: e.namespace },
        eventTime: new V1MicroTime(e.eventTime),
        regarding: { ...e.regarding },
        type: e.type,
        reason: e.reason,
        action: e.action,
        note: e.note,
        reportingController: e.reportingController,
        reportingInstance: e.reportingInstance,
      };
      await api.createNamespacedEvent({ namespace: e.namespace, body });
    },
    async updateSeries(namespace, name, series) {
      // The generated patch method sends application/json-patch+json; `add` sets or replaces.
      const body = [
        { op: 'add', path: '/series', value: { count: series.count, lastObservedTime: new V1MicroTime(series.lastObservedTime) } },
      ];
      await api.patchNamespacedEvent({ namespace, name, body });
    },
  };
}
