import { BindingError } from './errors.js';

// Bindings tie a ciphertext to the Kubernetes object it belongs to. They are validated with the
// API server's own naming rules so that a binding can never be ambiguous when encoded (none of
// the allowed characters is a separator we use) and never carries arbitrary text.

/** The EncryptedService a data key belongs to. */
export interface ServiceBinding {
  readonly namespace: string;
  readonly name: string;
}

/** One entry (`key`) of a Secret (`name`) in `namespace`. */
export interface SecretBinding {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_DATA_KEY = /^[-._a-zA-Z0-9]+$/;

function checkNamespace(namespace: unknown): void {
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    throw new BindingError('namespace must be a DNS-1123 label');
  }
}

function checkName(name: unknown): void {
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw new BindingError('name must be a DNS-1123 subdomain');
  }
}

function checkDataKey(key: unknown): void {
  if (
    typeof key !== 'string' ||
    key.length > 253 ||
    key === '.' ||
    key === '..' ||
    !SECRET_DATA_KEY.test(key)
  ) {
    throw new BindingError('key must be a valid Secret data key ([-._a-zA-Z0-9]+)');
  }
}

export function assertServiceBinding(binding: ServiceBinding): void {
  checkNamespace(binding.namespace);
  checkName(binding.name);
}

export function assertSecretBinding(binding: SecretBinding): void {
  checkNamespace(binding.namespace);
  checkName(binding.name);
  checkDataKey(binding.key);
}

export function formatServiceBinding(binding: ServiceBinding): string {
  return `${binding.namespace}/${binding.name}`;
}

export function formatSecretBinding(binding: SecretBinding): string {
  return `${binding.namespace}/${binding.name}[${binding.key}]`;
}
