import { Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-33';
import type { Construct } from 'constructs';
import {
  COMMON_LABELS,
  METRICS_PORT,
  OPERATOR_NAME,
  OPERATOR_NAMESPACE,
  SELECTOR_LABELS,
} from './install-names.js';

export interface OperatorOptions {
  /** Full image reference, e.g. `ghcr.io/lockstep-dev/lockstep-operator:0.1.0`. */
  readonly image: string;
  /** Issuer used when an EncryptedService names none, as `Kind/name`. */
  readonly defaultIssuer: string;
  readonly logLevel: string;
}

export const METRICS_SERVICE_NAME = `${OPERATOR_NAME}-metrics`;
const NONROOT_UID = 65532;

/** Namespace the operator runs in; Pod Security `restricted` proves the hardening holds. */
export class NamespaceChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    new k8s.KubeNamespace(this, 'namespace', {
      metadata: {
        name: OPERATOR_NAMESPACE,
        labels: {
          'app.kubernetes.io/part-of': 'lockstep',
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        },
      },
    });
  }
}

/** Deployment, PodDisruptionBudget and metrics Service of the operator. */
export class OperatorChart extends Chart {
  constructor(scope: Construct, id: string, options: OperatorOptions) {
    super(scope, id);
    const metricsPort = k8s.IntOrString.fromString('metrics');

    new k8s.KubeDeployment(this, 'deployment', {
      metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels: { ...COMMON_LABELS } },
      spec: {
        // Two replicas with leader election: a standby takes the Lease over when the leader's node
        // goes away, instead of waiting for a reschedule.
        replicas: 2,
        revisionHistoryLimit: 5,
        selector: { matchLabels: { ...SELECTOR_LABELS } },
        strategy: {
          type: 'RollingUpdate',
          rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) },
        },
        template: {
          metadata: {
            labels: { ...COMMON_LABELS },
            annotations: { 'kubectl.kubernetes.io/default-container': 'operator' },
          },
          spec: {
            serviceAccountName: OPERATOR_NAME,
            automountServiceAccountToken: true,
            // The operator talks to the API server only; Service env vars are noise.
            enableServiceLinks: false,
            // Long enough to finish an in-flight reconcile and release the Lease.
            terminationGracePeriodSeconds: 30,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: NONROOT_UID,
              runAsGroup: NONROOT_UID,
              fsGroup: NONROOT_UID,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            // ScheduleAnyway: a one-worker cluster (kind) must still run both replicas.
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'kubernetes.io/hostname',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: { ...SELECTOR_LABELS } },
              },
            ],
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  {
                    weight: 100,
                    podAffinityTerm: {
                      topologyKey: 'kubernetes.io/hostname',
                      labelSelector: { matchLabels: { ...SELECTOR_LABELS } },
                    },
                  },
                ],
              },
            },
            containers: [
              {
                name: 'operator',
                image: options.image,
                imagePullPolicy: 'IfNotPresent',
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'LOCKSTEP_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'LOCKSTEP_LEADER_ELECT', value: 'true' },
                  { name: 'LOCKSTEP_METRICS_ADDR', value: `:${METRICS_PORT}` },
                  { name: 'LOCKSTEP_DEFAULT_ISSUER', value: options.defaultIssuer },
                  { name: 'LOCKSTEP_LOG_LEVEL', value: options.logLevel },
                  // Requests claiming a Lockstep identity are approved only when they match a declared
                  // EncryptedService; cert-manager's built-in approver must be off (docs/approver.md).
                  { name: 'LOCKSTEP_APPROVER', value: 'identities' },
                ],
                ports: [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
                livenessProbe: {
                  httpGet: { path: '/healthz', port: metricsPort },
                  initialDelaySeconds: 10,
                  periodSeconds: 10,
                  timeoutSeconds: 2,
                  failureThreshold: 3,
                },
                readinessProbe: {
                  httpGet: { path: '/readyz', port: metricsPort },
                  periodSeconds: 5,
                  timeoutSeconds: 2,
                  failureThreshold: 3,
                },
                resources: {
                  requests: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('128Mi') },
                  limits: { cpu: k8s.Quantity.fromString('500m'), memory: k8s.Quantity.fromString('512Mi') },
                },
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: NONROOT_UID,
                  runAsGroup: NONROOT_UID,
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  capabilities: { drop: ['ALL'] },
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                // The root file system is read-only; Node and TLS libraries may still want a scratch dir.
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              },
            ],
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('64Mi') } }],
          },
        },
      },
    });

    new k8s.KubePodDisruptionBudget(this, 'pdb', {
      metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels: { ...COMMON_LABELS } },
      spec: {
        minAvailable: k8s.IntOrString.fromNumber(1),
        selector: { matchLabels: { ...SELECTOR_LABELS } },
        // A crash-looping replica must not block node drains.
        unhealthyPodEvictionPolicy: 'AlwaysAllow',
      },
    });

    new k8s.KubeService(this, 'metrics-service', {
      metadata: {
        name: METRICS_SERVICE_NAME,
        namespace: OPERATOR_NAMESPACE,
        labels: { ...COMMON_LABELS },
        annotations: {
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(METRICS_PORT),
          'prometheus.io/path': '/metrics',
        },
      },
      spec: {
        type: 'ClusterIP',
        selector: { ...SELECTOR_LABELS },
        ports: [{ name: 'metrics', port: METRICS_PORT, targetPort: metricsPort, protocol: 'TCP' }],
      },
    });
  }
}
