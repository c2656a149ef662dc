import { LeaseConflictError, type LeaseRecord, type LeaseState, type LeaseStore } from './leader-election.js';

/**
 * A Lease with the API server's concurrency semantics, for unit tests: every write bumps the
 * resourceVersion, creating an existing lease or updating a stale version throws
 * LeaseConflictError.
 */
export class MemoryLeaseStore implements LeaseStore {
  state: LeaseState | undefined;
  writes = 0;
  private rv = 0;

  async get(): Promise<LeaseState | undefined> {
    return this.state;
  }

  async create(record: LeaseRecord): Promise<LeaseState> {
    if (this.state) throw new LeaseConflictError('lease already exists');
    return this.write(record);
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<LeaseState> {
    if (!this.state || this.state.resourceVersion !== resourceVersion) throw new LeaseConflictError('stale resourceVersion');
    return this.write(record);
  }

  private write(record: LeaseRecord): LeaseState {
    this.writes++;
    this.state = { record: { ...record }, resourceVersion: String(++this.rv) };
    return this.state;
  }
}

/** A per-replica connection to a shared store whose requests can be made to fail or hang. */
export class FlakyLeaseStore implements LeaseStore {
  mode: 'ok' | 'fail' | 'hang' = 'ok';

  constructor(private readonly store: LeaseStore) {}

  get(): Promise<LeaseState | undefined> {
    return this.gate(() => this.store.get());
  }

  create(record: LeaseRecord): Promise<LeaseState> {
    return this.gate(() => this.store.create(record));
  }

  update(record: LeaseRecord, resourceVersion: string): Promise<LeaseState> {
    return this.gate(() => this.store.update(record, resourceVersion));
  }

  private gate<T>(fn: () => Promise<T>): Promise<T> {
    if (this.mode === 'fail') {
      return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }));
    }
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    return fn();
  }
}
