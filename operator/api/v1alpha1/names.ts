// Names of generated objects that users reference from their own manifests (volume mounts, CI
// sealing jobs), so they are part of the API and must not change between releases.

/** Secret holding an EncryptedService's key pair (tls.crt, tls.key, ca.crt), written by cert-manager. */
export function tlsSecretName(encryptedServiceName: string): string {
  return `${encryptedServiceName}-tls`;
}

/** ConfigMap in each namespace with EncryptedServices: the CA roots to trust (old and new during a CA rotation). */
export const TRUST_BUNDLE_CONFIGMAP = 'lockstep-trust-bundle';
/** Key of the PEM bundle in TRUST_BUNDLE_CONFIGMAP. */
export const TRUST_BUNDLE_KEY = 'ca.crt';

/** ConfigMap in a KeyPolicy's namespace with its public JWKS, for lockstep seal. */
export function publicJwksConfigMapName(keyPolicyName: string): string {
  return `${keyPolicyName}-jwks`;
}
/** Key of the JWKS JSON in the public JWKS ConfigMap. */
export const PUBLIC_JWKS_KEY = 'jwks.json';

/** PersistentVolumeClaim the operator creates for a volume of spec.atRest.volumes. */
export function volumeClaimName(encryptedServiceName: string, volumeName: string): string {
  return `${encryptedServiceName}-${volumeName}`;
}
