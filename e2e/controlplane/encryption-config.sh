#!/usr/bin/env bash
# Prints the API server's EncryptionConfiguration for Lockstep's KMS v2 plugin listening on the
# Unix socket SOCKET: Secrets only, written through the plugin (prefix k8s:enc:kms:v2:lockstep:),
# and `identity` second so Secrets stored before encryption was turned on still read.
# Used by cluster-up.sh (ENCRYPTION=lockstep) and e2e/kms.e2e.test.ts.
#   encryption-config.sh /path/to/kms.sock > encryption-config.yaml
set -euo pipefail
socket=${1:?usage: encryption-config.sh SOCKET}
case $socket in /*) ;; *) echo "encryption-config.sh: SOCKET must be an absolute path" >&2; exit 2 ;; esac
cat <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms:
      apiVersion: v2
      name: lockstep
      endpoint: unix://$socket
      timeout: 3s
  - identity: {}
YAML
