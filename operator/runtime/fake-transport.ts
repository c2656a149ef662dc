import type { KubernetesObject } from '@kubernetes/client-node';
import type { InformerTransport, ListResponse, QueryParams, WatchHandle } from './informer.js';

export interface FakeWatch {
  readonly path: string;
  readonly query: QueryParams;
  aborted: boolean;
  emit(type: string, obj: unknown): void;
  close(err?: unknown): void;
}

/**
 * An in-memory InformerTransport for unit tests: lists return `items` (or what `listImpl`
 * returns), and each watch is exposed so a test can push events or end it.
 */
export class FakeTransport implements InformerTransport {
  readonly lists: QueryParams[] = [];
  readonly watches: FakeWatch[] = [];
  items: KubernetesObject[] = [];
  resourceVersion = '1';
  listImpl: ((query: QueryParams) => ListResponse) | undefined;

  async list(_path: string, query: QueryParams): Promise<ListResponse> {
    this.lists.push(query);
    if (this.listImpl) return this.listImpl(query);
    return { items: this.items.map((o) => structuredClone(o)), metadata: { resourceVersion: this.resourceVersion } };
  }

  async watch(
    path: string,
    query: QueryParams,
    onEvent: (type: string, obj: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle> {
    const w: FakeWatch = {
      path,
      query,
      aborted: false,
      emit: (type, obj) => onEvent(type, structuredClone(obj)),
      close: (err) => onDone(err ?? null),
    };
    this.watches.push(w);
    return { abort: () => (w.aborted = true) };
  }

  /** The most recent watch. */
  get current(): FakeWatch {
    const w = this.watches.at(-1);
    if (!w) throw new Error('no watch has been opened');
    return w;
  }
}
