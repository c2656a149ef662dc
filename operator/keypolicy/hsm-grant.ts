// Who may keep KEKs in an HSM. The HSM's config Secret (module, token, PIN) is in the operator's
// namespace, which only administrators write; a KeyPolicy elsewhere may use it only when the
// administrator lists that namespace in the Secret's annotation — the same comma-separated/`*`
// grant as ClusterIssuers (docs/tenancy.md). Pure: the caller reads the Secret's metadata.
import { ANNOTATION_HSM_ALLOWED_NAMESPACES } from '../api/v1alpha1/index.js';
import { grantsNamespace } from '../rotationschedule/grant.js';

export type HsmGrant = { allowed: true } | { allowed: false; message: string };

export function hsmGrant(policyNamespace: string, operatorNamespace: string, configSecretName: string, annotations: Readonly<Record<string, string>> | undefined): HsmGrant {
  if (policyNamespace === operatorNamespace) return { allowed: true };
  if (grantsNamespace(annotations?.[ANNOTATION_HSM_ALLOWED_NAMESPACES], policyNamespace)) return { allowed: true };
  return {
    allowed: false,
    message: `HSM config Secret ${operatorNamespace}/${configSecretName} is not granted to namespace ${policyNamespace}: an administrator lists it (or *) in its annotation ${ANNOTATION_HSM_ALLOWED_NAMESPACES}; no key was made`,
  };
}
