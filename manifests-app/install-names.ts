// Names shared by the installed objects. The operator, RBAC bindings, the metrics Service and the
// PodDisruptionBudget all find each other through these, so they live in one place.

export const OPERATOR_NAMESPACE = 'lockstep-system';
export const OPERATOR_NAME = 'lockstep-operator';
export const IMAGE_REPOSITORY = 'ghcr.io/lockstep-dev/lockstep-operator';
export const METRICS_PORT = 8080;

// Selector labels must never change after the first release: a Deployment's selector is
// immutable, so a new value would force users to delete and recreate it.
export const SELECTOR_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': OPERATOR_NAME,
  'app.kubernetes.io/instance': 'lockstep',
};

export const COMMON_LABELS: Readonly<Record<string, string>> = {
  ...SELECTOR_LABELS,
  'app.kubernetes.io/part-of': 'lockstep',
  'app.kubernetes.io/component': 'operator',
};

