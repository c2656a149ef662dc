// Imported first by the operator's and the CLI's entry points: on an unsupported Node.js, stop
// with a clear message before the other modules are evaluated.
import { nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(problem);
  process.exit(1);
}
