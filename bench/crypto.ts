// Throughput of the crypto core, to size reconcile work and to justify the DEK cache.
// Run: npx tsx bench/crypto.ts            (about 30-60 s on 2 cores)
//      BENCH_BUDGET_MS=300 npx tsx bench/crypto.ts   (quicker, noisier)
// Every measurement stops at whichever comes first, its iteration cap or its time budget.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DekCache } from '../operator/crypto/dek-cache.js';
import { generateDataKey, unwrapDataKey, wrapDataKey } from '../operator/crypto/datakey.js';
import { decryptValue, encryptValue } from '../operator/crypto/envelope.js';
import { createKeySet, publicJwks, type KeyWrapAlgorithm, type SealingAlgorithm } from '../operator/crypto/keyset.js';
import { openSealed, sealValue } from '../operator/crypto/seal.js';

const BUDGET_MS = Number(process.env['BENCH_BUDGET_MS'] ?? 1500);
const now = new Date();
const service = { namespace: 'bench', name: 'svc' };
const secret = { namespace: 'bench', name: 'svc-secret', key: 'value' };
const value1k = randomBytes(1024);

interface Row {
  readonly name: string;
  readonly iterations: number;
  readonly opsPerSecond: number;
  readonly microsPerOp: number;
}

const rows: Row[] = [];

async function measure(name: string, op: () => unknown, maxIterations = 100_000, budgetMs = BUDGET_MS): Promise<Row> {
  for (let i = 0; i < Math.min(5, maxIterations); i += 1) await op();
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (iterations < maxIterations && elapsed < budgetMs) {
    await op();
    iterations += 1;
    elapsed = performance.now() - start;
  }
  const row = { name, iterations, opsPerSecond: (iterations / elapsed) * 1000, microsPerOp: (elapsed * 1000) / iterations };
  rows.push(row);
  process.stderr.write(`  ${name}\n`);
  return row;
}

function rawGcmEncrypt(key: Buffer, data: Buffer): Buffer[] {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return [iv, ciphertext, cipher.getAuthTag()];
}

function rawGcmDecrypt(key: Buffer, [iv, ciphertext, tag]: Buffer[]): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv as Buffer);
  decipher.setAuthTag(tag as Buffer);
  return Buffer.concat([decipher.update(ciphertext as Buffer), decipher.final()]);
}

async function main(): Promise<void> {
  const started = performance.now();
  process.stderr.write(`budget ${BUDGET_MS} ms per measurement\n`);

  const algorithms: [KeyWrapAlgorithm, string][] = [
    ['A256KW', 'A256KW'],
    ['RSA-OAEP-256', 'RSA-OAEP-256 (3072)'],
    ['ECDH-ES+A256KW', 'ECDH-ES+A256KW (P-256)'],
  ];
  const keks = new Map<KeyWrapAlgorithm, Awaited<ReturnType<typeof createKeySet>>>();
  for (const [alg, label] of algorithms) {
    const kek = await createKeySet('kek', alg, { now, rsaBits: 3072 });
    keks.set(alg, kek);
    const dataKey = generateDataKey();
    const wrapped = await wrapDataKey(kek, dataKey, service);
    await measure(`DEK wrap   ${label}`, () => wrapDataKey(kek, dataKey, service), 5000);
    await measure(`DEK unwrap ${label}`, () => unwrapDataKey(kek, wrapped, service), 5000);
  }

  const sealing: [SealingAlgorithm, string][] = [
    ['RSA-OAEP-256', 'RSA-OAEP-256 (3072)'],
    ['ECDH-ES+A256KW', 'ECDH-ES+A256KW (P-256)'],
  ];
  for (const [alg, label] of sealing) {
    const seal = await createKeySet('seal', alg, { now, rsaBits: 3072 });
    const published = publicJwks(seal);
    const sealed = await sealValue(published, value1k, secret);
    await measure(`seal 1 KiB   ${label}`, () => sealValue(published, value1k, secret), 5000);
    await measure(`unseal 1 KiB ${label}`, () => openSealed(seal, sealed, secret), 5000);
  }

  const dataKey = generateDataKey();
  const rawKey = dataKey.key.export();
  const envelope = encryptValue(dataKey, value1k, secret);
  const raw = rawGcmEncrypt(rawKey, value1k);
  await measure('envelope encrypt 1 KiB (cached DEK)', () => encryptValue(dataKey, value1k, secret), 200_000);
  await measure('envelope decrypt 1 KiB (cached DEK)', () => decryptValue(dataKey, envelope, secret), 200_000);
  await measure('raw node:crypto AES-256-GCM encrypt 1 KiB', () => rawGcmEncrypt(rawKey, value1k), 200_000);
  await measure('raw node:crypto AES-256-GCM decrypt 1 KiB', () => rawGcmDecrypt(rawKey, raw), 200_000);

  // Reconcile-like pass: S services with V values each; per service get the DEK (cache) and
  // decrypt every value, as materialising Secrets would. Cold = fresh cache, warm = second pass.
  const SERVICES = 100;
  const VALUES = 5;
  const passes: string[] = [];
  for (const [alg, label] of algorithms) {
    const kek = keks.get(alg);
    if (kek === undefined) continue;
    const fleet = await Promise.all(
      Array.from({ length: SERVICES }, async (_, i) => {
        const key = generateDataKey();
        const binding = { namespace: 'bench', name: `svc-${i}` };
        const values = Array.from({ length: VALUES }, (_, v) => {
          const target = { ...binding, key: `k${v}` };
          return { target, envelope: encryptValue(key, randomBytes(256), target) };
        });
        return { binding, wrapped: await wrapDataKey(kek, key, binding), values };
      }),
    );
    const pass = async (cache: DekCache): Promise<number> => {
      const start = performance.now();
      for (const svc of fleet) {
        const key = await cache.unwrap(kek, svc.wrapped, svc.binding);
        for (const { target, envelope: sealedValue } of svc.values) decryptValue(key, sealedValue, target);
      }
      return performance.now() - start;
    };
    const cache = new DekCache({ maxEntries: 1000, ttlMs: 10 * 60 * 1000 });
    const cold = await pass(cache);
    let warm = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i += 1) warm = Math.min(warm, await pass(cache));
    passes.push(
      `  ${label.padEnd(24)} cold ${cold.toFixed(1).padStart(8)} ms   warm ${warm.toFixed(2).padStart(7)} ms   ` +
        `(x${(cold / warm).toFixed(0)})`,
    );
    process.stderr.write(`  reconcile pass ${label}\n`);
  }

  const width = Math.max(...rows.map((row) => row.name.length));
  const lines = [
    `Lockstep crypto benchmark — node ${process.version}, ${now.toISOString()}`,
    '',
    `${'operation'.padEnd(width)}  ${'ops/s'.padStart(10)}  ${'µs/op'.padStart(9)}  ${'iterations'.padStart(10)}`,
    `${'-'.repeat(width)}  ${'-'.repeat(10)}  ${'-'.repeat(9)}  ${'-'.repeat(10)}`,
    ...rows.map(
      (row) =>
        `${row.name.padEnd(width)}  ${row.opsPerSecond.toFixed(0).padStart(10)}  ${row.microsPerOp.toFixed(1).padStart(9)}  ${String(row.iterations).padStart(10)}`,
    ),
    '',
    `Reconcile-like pass: ${SERVICES} services x ${VALUES} values (${SERVICES * VALUES} secrets), DEK via DekCache`,
    ...passes,
    '',
    `total ${((performance.now() - started) / 1000).toFixed(1)} s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
