// Identity of the lockstep.dev/v1alpha1 API: what the CRDs in crds/ register.
export const GROUP = 'lockstep.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface ResourceInfo {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortName: string;
}

export const ENCRYPTED_SERVICE = {
  kind: 'EncryptedService',
  plural: 'encryptedservices',
  singular: 'encryptedservice',
  shortName: 'esvc',
} as const satisfies ResourceInfo;

export const KEY_POLICY = {
  kind: 'KeyPolicy',
  plural: 'keypolicies',
  singular: 'keypolicy',
  shortName: 'kp',
} as const satisfies ResourceInfo;

export const ROTATION_SCHEDULE = {
  kind: 'RotationSchedule',
  plural: 'rotationschedules',
  singular: 'rotationschedule',
  shortName: 'rsched',
} as const satisfies ResourceInfo;

export const RESOURCES = [ENCRYPTED_SERVICE, KEY_POLICY, ROTATION_SCHEDULE] as const;

/** Name of the CustomResourceDefinition object, e.g. encryptedservices.lockstep.dev. */
export function crdName(resource: ResourceInfo): string {
  return `${resource.plural}.${GROUP}`;
}
