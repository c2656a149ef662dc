// The lockstep.dev/v1alpha1 API: types, names and defaults that mirror crds/*.yaml.
export * from './group.js';
export * from './metadata-keys.js';
export * from './conditions.js';
export * from './common-types.js';
export * from './encrypted-service.js';
export * from './key-policy.js';
export * from './rotation-schedule.js';
export * from './duration.js';
export * from './defaults.js';
export * from './names.js';
