// Rewrites the generated metrics table in docs/metrics.md (operator/runtime/metrics-doc.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { withMetricsTable } from '../operator/runtime/metrics-doc.js';

const file = new URL('../docs/metrics.md', import.meta.url);
writeFileSync(file, withMetricsTable(readFileSync(file, 'utf8')));
