// `lockstep version`: the CLI's version (package.json), and when the cluster answers, the API
// server's and the installed operator's (its Deployment's version label, else its image tag).
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { apiErrorCode, describeApiError, isNotFound } from '../runtime/api-error.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { lockstepVersion } from '../version.js';

export const VERSION_USAGE = `Usage: lockstep version [--client] [-o json|yaml] [--operator-namespace lockstep-system]
Prints the CLI's version and, unless --client, the API server's and the operator's (Deployment
lockstep-operator in --operator-namespace). Exit 3 when the cluster cannot be reached.
`;

const OPERATOR_DEPLOYMENT = 'lockstep-operator';

/** The operator's version from its Deployment: the app.kubernetes.io/version label, else the image tag. */
export function operatorVersion(deployment: k8s.V1Deployment): string {
  const label = deployment.metadata?.labels?.['app.kubernetes.io/version'];
  if (label) return label;
  const image = deployment.spec?.template.spec?.containers[0]?.image ?? '';
  const tag = /:([^:/@]+)(@|$)/.exec(image)?.[1];
  return tag ?? (image || 'unknown');
}

interface Versions { client: string; server?: string; operator?: string }

export async function versionCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      client: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      'operator-namespace': { type: 'string', default: 'lockstep-system' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(VERSION_USAGE);
    return EXIT.ok;
  }
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new CliError('-o must be json or yaml', EXIT.usage);
  const versions: Versions = { client: lockstepVersion() };
  const print = () => io.out(values.output === 'json' ? `${JSON.stringify(versions, null, 2)}\n` : values.output === 'yaml' ? stringify(versions)
    : [`Client Version: ${versions.client}`, ...(versions.server ? [`Server Version: ${versions.server}`] : []),
      ...(versions.operator ? [`Operator Version: ${versions.operator}`] : [])].join('\n') + '\n');
  if (values.client) {
    print();
    return EXIT.ok;
  }
  try {
    const kc = io.kubeConfig();
    versions.server = (await kc.makeApiClient(k8s.VersionApi).getCode()).gitVersion;
    const namespace = values['operator-namespace'];
    try {
      versions.operator = operatorVersion(await kc.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace, name: OPERATOR_DEPLOYMENT }));
    } catch (err) {
      if (apiErrorCode(err) === undefined) throw err;
      versions.operator = isNotFound(err) ? `not installed (no Deployment ${namespace}/${OPERATOR_DEPLOYMENT})` : `unknown (${describeApiError(err).reason})`;
    }
  } finally {
    // The client's version is worth printing even when the cluster does not answer.
    print();
  }
  return EXIT.ok;
}
