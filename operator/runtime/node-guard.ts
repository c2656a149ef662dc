// Imported first by the operator's and the CLI's entry points: on an unsupported Node.js, stop
// with a clear message before the other modules are evaluated. Not inside jest (unit tests import
// the CLI's main module): there node-version.test.ts fails instead and the other tests still run.
import { nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem && process.env.JEST_WORKER_ID === undefined) {
  process.stderr.write(problem);
  process.exit(1);
}
