import { Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-33';
import type { Construct } from 'constructs';
import { COMMON_LABELS, OPERATOR_NAME, OPERATOR_NAMESPACE } from './install-names.js';
import { clusterRules, leaderElectionRules, toPolicyRules } from './rbac.js';

export const CLUSTER_ROLE_NAME = OPERATOR_NAME;
export const LEADER_ELECTION_ROLE_NAME = `${OPERATOR_NAME}-leader-election`;

/** ServiceAccount, ClusterRole and the leader-election Role, bound to the operator. */
export class RbacChart extends Chart {
  constructor(scope: Construct, id: string) {
    // No chart namespace: cdk8s would stamp it on the cluster-scoped ClusterRole(Binding) too.
    super(scope, id);
    const subject = { kind: 'ServiceAccount', name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE };

    new k8s.KubeServiceAccount(this, 'service-account', {
      metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels: { ...COMMON_LABELS } },
      automountServiceAccountToken: true,
    });

    new k8s.KubeClusterRole(this, 'cluster-role', {
      metadata: { name: CLUSTER_ROLE_NAME, labels: { ...COMMON_LABELS } },
      rules: toPolicyRules(clusterRules),
    });
    new k8s.KubeClusterRoleBinding(this, 'cluster-role-binding', {
      metadata: { name: CLUSTER_ROLE_NAME, labels: { ...COMMON_LABELS } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CLUSTER_ROLE_NAME },
      subjects: [subject],
    });

    new k8s.KubeRole(this, 'leader-election-role', {
      metadata: { name: LEADER_ELECTION_ROLE_NAME, namespace: OPERATOR_NAMESPACE, labels: { ...COMMON_LABELS } },
      rules: toPolicyRules(leaderElectionRules),
    });
    new k8s.KubeRoleBinding(this, 'leader-election-role-binding', {
      metadata: { name: LEADER_ELECTION_ROLE_NAME, namespace: OPERATOR_NAMESPACE, labels: { ...COMMON_LABELS } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: LEADER_ELECTION_ROLE_NAME },
      subjects: [{ ...subject }],
    });
  }
}
