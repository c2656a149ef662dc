import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { namesService } from './revoker.js';

const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

(haveOpenssl ? describe : describe.skip)('namesService', () => {
  const cert = (san: string): X509Certificate => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-names-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-days', '1', '-subj', '/CN=x', '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
      return new X509Certificate(readFileSync(join(dir, 'c')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('accepts only a certificate that names <service>.<namespace>.svc', () => {
    const own = cert('DNS:b,DNS:b.shop,DNS:b.shop.svc,DNS:b.shop.svc.cluster.local,URI:spiffe://cluster.local/ns/shop/sa/b');
    expect(namesService(own, 'b', 'shop')).toBe(true);
    // Another service's certificate copied into this service's Secret is not revoked at its request.
    expect(namesService(own, 'a', 'shop')).toBe(false);
    expect(namesService(own, 'b', 'other')).toBe(false);
    expect(namesService(cert('DNS:b.shop.svc.evil.example'), 'b', 'shop')).toBe(false);
  });
});
