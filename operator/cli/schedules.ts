// Reading a RotationSchedule and setting or removing one of its annotations, for the rotate,
// pause and resume commands. The annotations are the API's own (metadata-keys.ts).
import * as k8s from '@kubernetes/client-node';
import { GROUP, ROTATION_SCHEDULE, VERSION, type RotationSchedule } from '../api/v1alpha1/index.js';
import { isNotFound } from '../runtime/api-error.js';
import { CliError } from './io.js';

export async function readSchedule(kc: k8s.KubeConfig, namespace: string, name: string): Promise<RotationSchedule> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  try {
    return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural, namespace, name })) as RotationSchedule;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`RotationSchedule ${namespace}/${name} not found`);
    throw err;
  }
}

/** Sets (string) or removes (null) one annotation with a merge patch; nothing else changes. */
export async function annotateSchedule(kc: k8s.KubeConfig, namespace: string, name: string, key: string, value: string | null): Promise<RotationSchedule> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const body = { metadata: { annotations: { [key]: value } } };
  try {
    return (await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: ROTATION_SCHEDULE.plural, namespace, name, body },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    )) as RotationSchedule;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`RotationSchedule ${namespace}/${name} not found`);
    throw err;
  }
}
