// ESM jest (client-node 1.x is ESM-only). Type errors are caught by `tsc --noEmit`, not here.
// Two projects: `unit` (pure logic, beside the sources) and `e2e` (a real cluster via KUBECONFIG).
// The npm scripts pick one with LOCKSTEP_TESTS so that paths given on the command line filter
// within it (jest's --selectProjects would swallow them).
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  // Relative imports are written with `.js` (NodeNext); map them back to the `.ts` sources.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  // Local control planes keep etcd data under e2e/.cluster*: its *.snap files are not jest snapshots.
  modulePathIgnorePatterns: ['<rootDir>/e2e/\\.cluster', '<rootDir>/dist'],
  watchPathIgnorePatterns: ['<rootDir>/e2e/\\.cluster'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/e2e/\\.cluster', '<rootDir>/dist'],
};
const projects = {
  unit: { ...common, displayName: 'unit', testMatch: ['<rootDir>/operator/**/*.test.ts', '<rootDir>/manifests-app/**/*.test.ts', '<rootDir>/bench/**/*.test.ts', '<rootDir>/scripts/**/*.test.ts'] },
  e2e: { ...common, displayName: 'e2e', testMatch: ['<rootDir>/e2e/**/*.e2e.test.ts'], testTimeout: 180000 },
};
const selected = process.env.LOCKSTEP_TESTS;
export default selected ? projects[selected] : { projects: Object.values(projects) };
