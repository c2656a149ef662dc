// One version: package.json's. The operator reads it at run time (operator/version.ts); the
// manifests' image tag is rendered from it (manifests-app/main.ts, drift caught by
// check-manifests); the chart's version and appVersion must equal it. `make version VERSION=x.y.z`
// (scripts/set-version.sh) changes all of them together.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { lockstepVersion } from '../operator/version.js';
import { IMAGE_REPOSITORY } from './install-names.js';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

describe('one version', () => {
  const version = (JSON.parse(read('package.json')) as { version: string }).version;

  it('is a semantic version the operator reports', () => {
    expect(version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(lockstepVersion()).toBe(version);
  });

  it('is the chart\'s version and appVersion', () => {
    const chart = parse(read('charts/lockstep/Chart.yaml')) as { version: unknown; appVersion: unknown };
    expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({ version, appVersion: version });
  });

  it('is the image tag of manifests/operator.yaml', () => {
    const images = [...read('manifests/operator.yaml').matchAll(/^\s+image: (\S+)$/gm)].map((m) => m[1]);
    expect(images).toEqual([`${IMAGE_REPOSITORY}:${version}`]);
  });
});
