// Each e2e test file works in a namespace of its own, created before and deleted after it.
import { randomBytes } from 'node:crypto';
import type { Clients } from './cluster.js';

export async function createTestNamespace(c: Clients, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`.toLowerCase().slice(0, 63);
  await c.core.createNamespace({
    body: { metadata: { name, labels: { 'lockstep.dev/e2e': 'true' } } },
  });
  return name;
}

export async function deleteTestNamespace(c: Clients, name: string): Promise<void> {
  try {
    await c.core.deleteNamespace({ name });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}
