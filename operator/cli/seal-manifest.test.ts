import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { mergeSealedEntry, parseSecretManifest, sealedEntry, sealedEntryYaml } from './seal-manifest.js';

const JWE = 'eyJhbGciOiJFQ0RILUVTIn0..aXY.Y2lwaGVy.dGFn';

describe('parseSecretManifest', () => {
  it('reads data and stringData (stringData wins), name, namespace and type', () => {
    const m = parseSecretManifest(`apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
type: kubernetes.io/basic-auth
data: {username: ${Buffer.from('admin').toString('base64')}, password: ${Buffer.from('old').toString('base64')}}
stringData: {password: new}
`);
    expect(m).toMatchObject({ name: 'db', namespace: 'shop', type: 'kubernetes.io/basic-auth' });
    expect([...m.values].map(([k, v]) => `${k}=${v.toString()}`)).toEqual(['username=admin', 'password=new']);
  });

  it('refuses what is not one Secret with data, without quoting any value', () => {
    expect(() => parseSecretManifest('kind: ConfigMap\ndata: {a: b}\n')).toThrow(/not a Secret/);
    expect(() => parseSecretManifest('kind: Secret\nmetadata: {name: x}\n')).toThrow(/nothing to seal/);
    expect(() => parseSecretManifest('kind: Secret\ndata: {a: "not base64 s3cr3t!"}\n')).toThrow(/data\.a is not base64$/);
    expect(() => parseSecretManifest('kind: Secret\ndata: {a: YQ==}\n---\nkind: Secret\ndata: {b: YQ==}\n')).toThrow(/got 2 documents/);
    expect(() => parseSecretManifest('')).toThrow(/got 0 documents/);
  });
});

describe('sealed entries', () => {
  it('prints a complete list item with type only when not Opaque, JWEs unfolded', () => {
    const long = `${JWE}${'A'.repeat(300)}`;
    expect(parse(sealedEntryYaml(sealedEntry('db', { password: long }, 'Opaque')))).toEqual([{ name: 'db', encryptedData: { password: long } }]);
    expect(sealedEntryYaml(sealedEntry('tls', { 'tls.crt': JWE, 'tls.key': JWE }, 'kubernetes.io/tls')).split('\n')).toHaveLength(6);
  });

  const file = `# the shop's API
apiVersion: lockstep.dev/v1alpha1
kind: EncryptedService
metadata:
  name: api
  namespace: shop
spec:
  keyPolicyRef: {name: keys} # same namespace
  secrets:
    sealed:
      - name: other
        encryptedData: {k: ${JWE}}
      - name: db
        encryptedData: {stale: ${JWE}}
---
apiVersion: lockstep.dev/v1alpha1
kind: RotationSchedule
metadata: {name: nightly, namespace: shop}
`;

  it('merges into the EncryptedService: replaces the entry of that name, keeps comments and other documents', () => {
    const merged = mergeSealedEntry(file, sealedEntry('db', { password: JWE, username: JWE }), 'shop');
    expect(merged).toContain('# the shop\'s API');
    expect(merged).toContain('# same namespace');
    const [es, rs] = merged.split(/^---$/m).map((d) => parse(d) as { spec?: { secrets: { sealed: unknown[] } }; kind: string });
    expect(es?.spec?.secrets.sealed).toEqual([{ name: 'other', encryptedData: { k: JWE } }, { name: 'db', encryptedData: { password: JWE, username: JWE } }]);
    expect(rs?.kind).toBe('RotationSchedule');
  });

  it('adds spec.secrets.sealed when missing, and refuses a service in another namespace', () => {
    const bare = 'kind: EncryptedService\nmetadata: {name: web, namespace: shop}\nspec: {keyPolicyRef: {name: keys}}\n';
    expect(parse(mergeSealedEntry(bare, sealedEntry('db', { a: JWE }), 'shop')).spec.secrets.sealed).toEqual([{ name: 'db', encryptedData: { a: JWE } }]);
    expect(() => mergeSealedEntry(bare, sealedEntry('db', { a: JWE }), 'other')).toThrow(/sealed for other: they would not open there/);
    expect(() => mergeSealedEntry(`${bare}---\n${bare}`, sealedEntry('db', { a: JWE }), 'shop')).toThrow(/--service/);
    expect(() => mergeSealedEntry(bare, sealedEntry('db', { a: JWE }), 'shop', 'nope')).toThrow(/no EncryptedService named nope/);
  });
});
