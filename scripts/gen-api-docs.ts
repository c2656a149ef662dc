// Writes docs/api.md from crds/ (operator/api/reference.ts).
import { writeFileSync } from 'node:fs';
import { apiReference } from '../operator/api/reference.js';

writeFileSync(new URL('../docs/api.md', import.meta.url), apiReference());
