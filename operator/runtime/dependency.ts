// An API the operator needs for part of its work (cert-manager's), judged from the informers that
// cache its kinds (InformerOptions.optionalApi). While one of them is not served, what needs it
// reports problem() as a condition, /readyz says what it waits for, and a gauge is 1; everything
// else keeps working. It is re-checked by the informers themselves, so nothing needs a restart
// when the API appears.
import type { ReadinessCheck } from './health.js';
import type { InformerHandlers } from './informer.js';
import type { OperatorMetrics } from './metrics.js';

export interface DependencyProblem<R extends string = string> {
  readonly reason: R;
  readonly message: string;
}

/** What a reconciler asks: undefined while the dependency is there. */
export interface DependencyCheck<R extends string = string> {
  problem(): DependencyProblem<R> | undefined;
}

/** What this needs of an informer. */
export interface ServedSource {
  served(): boolean | undefined;
  addHandlers(handlers: InformerHandlers<never>): () => void;
}

export interface ApiDependencyOptions<R extends string = string> {
  /** e.g. `cert-manager`: the metric's label and readiness name. */
  readonly name: string;
  /** Condition reason while missing, e.g. `CertManagerMissing`. */
  readonly reason: R;
  /** What to do, first in the message: `install cert-manager v1.x`. */
  readonly fix: string;
  /** `cert-manager.io/v1` */
  readonly groupVersion: string;
  /** Kind → the informer that caches it. */
  readonly kinds: Readonly<Record<string, ServedSource>>;
  readonly metrics?: Pick<OperatorMetrics, 'dependencyMissing'>;
}

export class ApiDependency<R extends string = string> implements DependencyCheck<R> {
  readonly name: string;
  private readonly o: ApiDependencyOptions<R>;

  constructor(options: ApiDependencyOptions<R>) {
    this.o = options;
    this.name = options.name;
    const report = () => options.metrics?.dependencyMissing.set({ dependency: options.name }, this.missing().length > 0 ? 1 : 0);
    report();
    for (const source of Object.values(options.kinds)) source.addHandlers({ servedChanged: report });
  }

  /** Kinds known not to be served (not those still being listed for the first time). */
  missing(): string[] {
    return Object.entries(this.o.kinds).filter(([, source]) => source.served() === false).map(([kind]) => kind);
  }

  problem(): DependencyProblem<R> | undefined {
    const missing = this.missing();
    if (missing.length === 0) return undefined;
    return { reason: this.o.reason, message: `${this.o.fix}: ${this.o.groupVersion} ${missing.join(', ')} not served` };
  }

  /**
   * Ready either way: the leader must keep reconciling what does not need the dependency, and a
   * pod that is not ready leaves the metrics Service (the gauge saying what is missing with it)
   * and stalls rollouts and GitOps health. The body names what it waits for.
   */
  readinessCheck(): ReadinessCheck {
    return { name: `dependency/${this.name}`, ready: () => true, waitingFor: () => this.problem()?.message };
  }
}
