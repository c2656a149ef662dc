// The monitoring pack: Prometheus alerts, a ServiceMonitor and a Grafana dashboard, written as the
// optional kustomize Component manifests/monitoring/ and as files the Helm chart reads with
// .Files.Get (charts/lockstep/files/monitoring/), so both install the same rules and dashboard.
// e2e/monitoring.e2e.test.ts evaluates every alert on recorded scrapes of the real operator.
import { stringify } from 'yaml';
import { COMMON_LABELS, OPERATOR_NAME, OPERATOR_NAMESPACE, SELECTOR_LABELS } from './install-names.js';

/** Where the runbooks live: one anchor per alert in docs/troubleshooting.md (## Alerts). */
export const RUNBOOK_BASE = 'https://github.com/lockstep-dev/lockstep/blob/main/docs/troubleshooting.md';

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: 'critical' | 'warning' };
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}

const alert = (name: string, expr: string, duration: string, severity: 'critical' | 'warning', summary: string, description: string): AlertRule => ({
  alert: name,
  expr,
  for: duration,
  labels: { severity },
  annotations: { summary, description, runbook_url: `${RUNBOOK_BASE}#${name.toLowerCase()}` },
});

// Anomalies on cert-manager CertificateRequests that claim Lockstep identities (issue 14, part 4;
// operator/approver/anomalies.ts). The approver denies them; these say someone is trying.
// Counters that only appear with their first count (unmatched) start above zero, which
// increase() cannot see: a series that did not exist a window ago and is above zero counts too.
const CR_WINDOW = '15m';
const counted = (metric: string, by: string): string =>
  `sum by (${by}) (increase(${metric}[${CR_WINDOW}])) > 0 or sum by (${by}) (${metric} > 0 unless ${metric} offset ${CR_WINDOW})`;
const IDENTITY_REQUESTS = 'lockstep_certificaterequest_identity_requests_total';
const CERTIFICATE_REQUEST_ALERTS: readonly AlertRule[] = [
  alert('LockstepCertificateRequestUnmatchedIdentity',
    counted('lockstep_certificaterequest_unmatched_identity_total', 'namespace'), '0m', 'warning',
    'A CertificateRequest in namespace {{ $labels.namespace }} claimed a Lockstep identity no EncryptedService declares',
    'CertificateRequests in {{ $labels.namespace }} claimed a Lockstep SPIFFE ID, DNS name or label that matches no declared EncryptedService in the last 15 minutes; they were denied. Their UnmatchedLockstepIdentity Events name the requests and requesters.'),
  alert('LockstepCertificateRequestSANsOutsideService',
    counted('lockstep_certificaterequest_sans_outside_total', 'namespace, service'), '0m', 'warning',
    'A CertificateRequest claimed the identity of {{ $labels.namespace }}/{{ $labels.service }} with names outside it',
    'CertificateRequests claiming the identity of EncryptedService {{ $labels.namespace }}/{{ $labels.service }} asked for SANs outside its names in the last 15 minutes; they were denied. The service\'s SANsOutsideService Events name the requests.'),
  // More than 5 requests in 5 minutes (renewals make one per certificate lifetime, an hour at the
  // least) and a 5-minute rate over 4 times the hour's: the last 5 minutes hold over a third of the
  // hour's requests (12 times would be all of them), so a steady high rate from many rotations is
  // not a spike, and a first burst on a quiet identity is.
  alert('LockstepCertificateRequestBurst',
    `sum by (namespace, service) (increase(${IDENTITY_REQUESTS}[5m])) > 5 and sum by (namespace, service) (rate(${IDENTITY_REQUESTS}[5m])) > 4 * sum by (namespace, service) (rate(${IDENTITY_REQUESTS}[1h]))`, '0m', 'warning',
    'A burst of CertificateRequests for the identity of {{ $labels.namespace }}/{{ $labels.service }}',
    '{{ $value | humanize }} CertificateRequests asked for the identity of EncryptedService {{ $labels.namespace }}/{{ $labels.service }} in 5 minutes, over 4 times its rate over the hour. Its CertificateRequestBurst Events say from which namespace and requester.'),
];

/** The alerts, in the order docs/troubleshooting.md lists their runbooks. */
export const ALERTS: readonly AlertRule[] = [
  alert('LockstepCertificateExpiringSoon',
    // Only once its renewal is overdue: a short-lived certificate (1h, cert-manager's minimum) always
    // has less than an hour left and is fine as long as cert-manager renews it when due.
    'lockstep_certificate_expiry_timestamp_seconds - time() < 3600 unless on (namespace, service) lockstep_certificate_renewal_timestamp_seconds > time()', '5m', 'critical',
    'Certificate of EncryptedService {{ $labels.namespace }}/{{ $labels.service }} expires within an hour and was not renewed',
    'The certificate issued for {{ $labels.namespace }}/{{ $labels.service }} expires in {{ $value | humanizeDuration }} and cert-manager did not renew it when due.'),
  alert('LockstepServedCertificateExpiringSoon',
    // Only while some endpoint serves something other than what was issued: a renewed certificate
    // the workload did not load (an issued one near its end is LockstepCertificateExpiringSoon's).
    'lockstep_served_certificate_days_to_expiry * 86400 < 3600 and on (namespace, service) lockstep_served_certificate_drift_endpoints > 0', '5m', 'critical',
    'An endpoint of {{ $labels.namespace }}/{{ $labels.service }} serves a certificate that expires within an hour',
    'What clients of {{ $labels.namespace }}/{{ $labels.service }} are served expires in under an hour ({{ $value | humanize }} s): the workload did not pick up its renewed certificate.'),
  alert('LockstepCAExpiringSoon',
    'lockstep_ca_expiry_timestamp_seconds - time() < 30 * 86400', '1h', 'warning',
    'CA certificate {{ $labels.namespace }}/{{ $labels.certificate }} expires within 30 days',
    'The CA {{ $labels.namespace }}/{{ $labels.certificate }} (KeyPolicy {{ $labels.keypolicy }}) expires in {{ $value | humanizeDuration }}: rotate it with a RotationSchedule (ca) before leaves stop chaining.'),
  alert('LockstepRotationFailed',
    'lockstep_rotation_phase{phase=~"Failed|RolledBack"} == 1', '0m', 'warning',
    'Rotation of RotationSchedule {{ $labels.namespace }}/{{ $labels.name }} is {{ $labels.phase }}',
    'RotationSchedule {{ $labels.namespace }}/{{ $labels.name }} ended its last rotation {{ $labels.phase }}: read its status.history and Events for the failed verification.'),
  alert('LockstepKeyOlderThanPeriod',
    'time() - max by (namespace, keypolicy) (lockstep_key_created_timestamp_seconds) - on (namespace, keypolicy) lockstep_key_rotation_period_seconds > 3600', '15m', 'warning',
    'KeyPolicy {{ $labels.namespace }}/{{ $labels.keypolicy }} has not rotated its key on schedule',
    'The newest key of KeyPolicy {{ $labels.namespace }}/{{ $labels.keypolicy }} is {{ $value | humanizeDuration }} older than its rotation period.'),
  alert('LockstepVerificationFailing',
    'lockstep_verification_violations > 0', '10m', 'warning',
    'Verification of {{ $labels.namespace }}/{{ $labels.service }} fails: {{ $labels.kind }}',
    '{{ $value }} endpoint(s) of {{ $labels.namespace }}/{{ $labels.service }} fail the {{ $labels.kind }} check of continuous verification.'),
  alert('LockstepNoLeader',
    '(max(lockstep_leader) or on () vector(0)) == 0', '5m', 'critical',
    'No Lockstep operator replica leads: nothing is reconciled',
    'No replica of the Lockstep operator holds the leader Lease (or none is scraped): no certificate, key or rotation is reconciled.'),
  alert('LockstepAPIServerUnreachable',
    // Per replica: a request with no answer (refused, reset, or none within the client's request
    // timeout) sets it to 0 until /readyz answers 200. A leader that cannot reach the server also
    // loses its Lease (LockstepNoLeader); this one says why, and for standbys too.
    'lockstep_apiserver_reachable == 0', '5m', 'critical',
    'Lockstep replica {{ $labels.instance }} cannot reach the Kubernetes API server',
    'Requests of the Lockstep operator replica {{ $labels.instance }} have got no answer from the API server for 5 minutes (refused, reset or timed out; its /readyz probe fails too): it reconciles nothing. Its log says since when (API server not answering).'),
  alert('LockstepReconcileErrors',
    // Objects still failing, not errors counted: a burst that retries clear (an API server restart
    // fails every object once) is no fault, and one object failing for good is retried only every
    // 5 minutes (the backoff cap), about the 3 errors in 15 minutes a counter threshold would need.
    'sum by (controller, reason) (lockstep_reconcile_failing_objects) > 0', '15m', 'warning',
    'Lockstep {{ $labels.controller }} reconciles keep failing ({{ $labels.reason }})',
    '{{ $value }} object(s) of the {{ $labels.controller }} controller have kept failing to reconcile with reason {{ $labels.reason }} for 15 minutes (retried with backoff); the operator log names them (reconcile failed; will retry).'),
  alert('LockstepResourceNotReady',
    'lockstep_resource_ready == 0', '15m', 'warning',
    '{{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} is not Ready',
    '{{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} has not been Ready for 15 minutes: its Ready condition says why (kubectl lockstep status -n {{ $labels.namespace }}).'),
  ...CERTIFICATE_REQUEST_ALERTS,
];

/** The spec of the PrometheusRule (its groups), the single source of both installs. */
export function prometheusRuleSpec(): { groups: unknown[] } {
  return { groups: [{ name: 'lockstep', rules: ALERTS }] };
}

// The same names and labels as the chart's templates (charts/lockstep/templates/monitoring/,
// servicemonitor.yaml), so either install can take over the objects of the other.
const MONITORING_LABELS = COMMON_LABELS;

function prometheusRule(): unknown {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels: MONITORING_LABELS },
    spec: prometheusRuleSpec(),
  };
}

function serviceMonitor(): unknown {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels: MONITORING_LABELS },
    spec: {
      selector: { matchLabels: { ...SELECTOR_LABELS } },
      namespaceSelector: { matchNames: [OPERATOR_NAMESPACE] },
      endpoints: [{ port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }],
    },
  };
}

interface Panel { readonly title: string; readonly type: 'timeseries' | 'stat' | 'table'; readonly expr: string; readonly legend: string; readonly unit?: string }

const PANELS: readonly Panel[] = [
  { title: 'Resources not Ready', type: 'stat', expr: 'count(lockstep_resource_ready == 0) or vector(0)', legend: 'not Ready' },
  { title: 'Leader', type: 'stat', expr: 'max(lockstep_leader) or vector(0)', legend: 'leader' },
  { title: 'Not Ready, by resource', type: 'table', expr: 'lockstep_resource_ready == 0', legend: '{{kind}} {{namespace}}/{{name}}' },
  { title: 'Issued certificate expires in', type: 'timeseries', expr: 'lockstep_certificate_expiry_timestamp_seconds - time()', legend: '{{namespace}}/{{service}}', unit: 's' },
  { title: 'Served certificate expires in', type: 'timeseries', expr: 'lockstep_served_certificate_days_to_expiry * 86400', legend: '{{namespace}}/{{service}}', unit: 's' },
  { title: 'CA expires in', type: 'timeseries', expr: 'lockstep_ca_expiry_timestamp_seconds - time()', legend: '{{namespace}}/{{certificate}}', unit: 's' },
  { title: 'Newest key age / rotation period', type: 'timeseries', expr: 'min by (namespace, keypolicy) (lockstep_key_age_seconds) / on (namespace, keypolicy) lockstep_key_rotation_period_seconds', legend: '{{namespace}}/{{keypolicy}}', unit: 'percentunit' },
  { title: 'Rotations, by outcome', type: 'timeseries', expr: 'sum by (kind, outcome) (increase(lockstep_rotations_total[1h]))', legend: '{{kind}} {{outcome}}' },
  { title: 'Rotation phase', type: 'table', expr: 'lockstep_rotation_phase == 1', legend: '{{namespace}}/{{name}} {{phase}}' },
  { title: 'Verification violations', type: 'timeseries', expr: 'sum by (namespace, service, kind) (lockstep_verification_violations)', legend: '{{namespace}}/{{service}} {{kind}}' },
  { title: 'Objects failing reconcile', type: 'timeseries', expr: 'sum by (controller, reason) (lockstep_reconcile_failing_objects)', legend: '{{controller}} {{reason}}' },
  { title: 'Reconcile errors / s', type: 'timeseries', expr: 'sum by (controller, reason) (rate(lockstep_reconcile_errors_total[5m]))', legend: '{{controller}} {{reason}}' },
  { title: 'Reconcile duration p95', type: 'timeseries', expr: 'histogram_quantile(0.95, sum by (controller, le) (rate(lockstep_reconcile_duration_seconds_bucket[5m])))', legend: '{{controller}}', unit: 's' },
  { title: 'Work queue depth', type: 'timeseries', expr: 'sum by (controller) (lockstep_workqueue_depth)', legend: '{{controller}}' },
  { title: 'Work queue adds and retries / s', type: 'timeseries', expr: 'sum by (controller) (rate(lockstep_workqueue_adds_total[5m])) or sum by (controller) (rate(lockstep_workqueue_retries_total[5m]))', legend: '{{controller}}' },
  { title: 'Work queue wait p95', type: 'timeseries', expr: 'histogram_quantile(0.95, sum by (controller, le) (rate(lockstep_workqueue_queue_duration_seconds_bucket[5m])))', legend: '{{controller}}', unit: 's' },
  { title: 'API throttling (429) / s', type: 'timeseries', expr: 'sum by (client, outcome) (rate(lockstep_kube_throttled_total[5m]))', legend: '{{client}} {{outcome}}' },
];

/** A Grafana dashboard (schemaVersion 39) with a Prometheus data source variable. */
export function dashboard(): Record<string, unknown> {
  const width = 12;
  const height = 8;
  return {
    title: 'Lockstep',
    uid: 'lockstep-operator',
    tags: ['lockstep'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: {
      list: [{ name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 }],
    },
    annotations: { list: [] },
    panels: PANELS.map((p, i) => ({
      id: i + 1,
      title: p.title,
      type: p.type,
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos: { h: height, w: width, x: (i % 2) * width, y: Math.floor(i / 2) * height },
      fieldConfig: { defaults: p.unit ? { unit: p.unit } : {}, overrides: [] },
      options: {},
      targets: [{ refId: 'A', expr: p.expr, legendFormat: p.legend, ...(p.type === 'table' ? { instant: true, format: 'table' } : {}) }],
    })),
  };
}

export const DASHBOARD_FILE = 'lockstep-dashboard.json';

function dashboardConfigMap(json: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    // grafana_dashboard: the label Grafana's dashboard sidecar (kube-prometheus-stack) looks for.
    metadata: { name: 'lockstep-dashboard', namespace: OPERATOR_NAMESPACE, labels: { ...MONITORING_LABELS, grafana_dashboard: '1' } },
    data: { [DASHBOARD_FILE]: json },
  };
}

/** Files of the monitoring pack, relative to the repository root. */
export function monitoringFiles(generated: string, documents: (objects: readonly unknown[]) => string): { path: string; content: string }[] {
  const json = `${JSON.stringify(dashboard(), null, 2)}\n`;
  const ruleSpec = stringify(prometheusRuleSpec(), { aliasDuplicateObjects: false, lineWidth: 0 });
  const component = {
    apiVersion: 'kustomize.config.k8s.io/v1alpha1',
    kind: 'Component',
    resources: ['prometheusrule.yaml', 'servicemonitor.yaml', 'dashboard.yaml'],
  };
  return [
    { path: 'manifests/monitoring/prometheusrule.yaml', content: generated + documents([prometheusRule()]) },
    { path: 'manifests/monitoring/servicemonitor.yaml', content: generated + documents([serviceMonitor()]) },
    // A literal block keeps the JSON byte for byte (a folded one is what the chart's `|` is not).
    { path: 'manifests/monitoring/dashboard.yaml', content: `${generated}---\n${stringify(dashboardConfigMap(json), { blockQuote: 'literal' })}` },
    { path: 'manifests/monitoring/kustomization.yaml', content: generated + stringify(component) },
    { path: 'charts/lockstep/files/monitoring/prometheusrule-spec.yaml', content: generated + ruleSpec },
    { path: `charts/lockstep/files/monitoring/${DASHBOARD_FILE}`, content: json },
  ];
}
