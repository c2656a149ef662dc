// The Node.js runtime Lockstep supports: Node 24 LTS or newer (Node 20 is end-of-life since
// 2026-04-30). package.json's `engines` and its node-linux-* optional dependencies (the official
// binary from the npm registry, first on PATH for npm scripts) say the same; a unit test keeps
// them in step.
export const MIN_NODE_MAJOR = 24;

export function nodeMajor(version: string): number {
  return Number.parseInt(version.replace(/^v/, '').split('.')[0] ?? '', 10);
}

// What to print when `version` (process.versions.node) is too old; undefined when it will do.
export function nodeVersionProblem(version: string): string | undefined {
  const major = nodeMajor(version);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) return undefined;
  return (
    `lockstep needs Node.js ${MIN_NODE_MAJOR} LTS or newer; this is Node.js ${version}.\n` +
    `In a clone, start it through npm or make (\`npx lockstep\`, \`npm start\`, \`make run\`): they put the ` +
    `project's Node ${MIN_NODE_MAJOR} (node_modules/.bin/node, installed by \`npm ci\`) first on PATH. ` +
    `Elsewhere, put a Node ${MIN_NODE_MAJOR} binary first on PATH (README, "Node.js").\n`
  );
}
