// Everything the operator writes for humans (logs, Event notes, condition messages) passes
// through a Redactor, so a secret value cannot reach them even when a library error echoes a
// request body. Three layers: sensitive field names, shapes that are secret wherever they
// appear (PEM private keys, JWE/JWT, bearer tokens, private JWK members, embedded JSON fields),
// and exact values the operator knows are secret (registered when it loads or creates them).

export const REDACTED = '[REDACTED]';

/** Shortest value the registry scrubs; shorter strings would mangle ordinary text. */
export const MIN_SECRET_LENGTH = 8;

const SENSITIVE_NAMES = new Set([
  'secret', 'secrets', 'token', 'tokens', 'password', 'passwd', 'passphrase', 'key', 'keys',
  'privatekey', 'data', 'stringdata', 'binarydata', 'jwk', 'jwks', 'plaintext', 'ciphertext',
  'authorization', 'cookie', 'setcookie', 'credential', 'credentials', 'dek', 'kek', 'cek',
  'encryptedkey', 'cryptokeyvalue', 'clientsecret', 'apikey', 'bearer', 'seed',
  // HSM PINs (PKCS#11 Secret): often shorter than MIN_SECRET_LENGTH, so the value registry cannot scrub them.
  'pin', 'userpin', 'sopin',
]);
const SENSITIVE_SUFFIXES = ['password', 'passphrase', 'secret', 'token', 'key', 'plaintext', 'ciphertext'];

/** Private (or symmetric) members of a JWK (RFC 7518 §6). */
const JWK_PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']);

export function isSensitiveKey(name: string): boolean {
  const n = name.toLowerCase().replace(/[-_.\s]/g, '');
  if (SENSITIVE_NAMES.has(n)) return true;
  return SENSITIVE_SUFFIXES.some((s) => n.endsWith(s));
}

const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;
// Compact JWS/JWT (3 segments) and JWE (5 segments): base64url JSON header starting `{"`.
const COMPACT_JOSE = /eyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){2}(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?/g;
// The lookahead wants a digit or symbol in the credential so prose ("Basic authentication") survives.
const AUTH_HEADER = /\b(Bearer|Basic)(\s+)(?=[A-Za-z]*[0-9+/=._~-])[A-Za-z0-9._~+/-]{6,}=*/gi;
const ASSIGNMENT = /\b(password|passwd|token|secret|api[_-]?key|access[_-]?key|client[_-]?secret)=([^\s&;,"']+)/gi;
// "name": "value" or "name": {flat object}, optionally with escaped quotes (JSON inside JSON).
const EMBEDDED_JSON_FIELD = /(\\?")([\w.-]{1,64})\1(\s*:\s*)(\{[^{}]*\}|\\?"(?:[^"\\]|\\[^"])*\\?")/g;

export class SecretRegistry {
  private readonly values = new Set<string>();
  private pattern: RegExp | undefined;
  private stale = false;

  /**
   * Records a secret so it is scrubbed from everything redacted afterwards, together with its
   * base64 and base64url forms (Secret `data` is base64). Values shorter than MIN_SECRET_LENGTH
   * are ignored: scrubbing them would garble unrelated text.
   */
  register(value: string | Uint8Array): void {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    const forms = [bytes.toString('base64'), bytes.toString('base64url')];
    if (typeof value === 'string') forms.push(value);
    else forms.push(bytes.toString('hex'));
    for (const f of forms) {
      if (f.length >= MIN_SECRET_LENGTH && !this.values.has(f)) {
        this.values.add(f);
        this.stale = true;
      }
    }
  }

  size(): number {
    return this.values.size;
  }

  scrub(text: string): string {
    if (this.values.size === 0) return text;
    if (this.stale || this.pattern === undefined) {
      const sorted = [...this.values].sort((a, b) => b.length - a.length).map(escapeRegExp);
      this.pattern = new RegExp(sorted.join('|'), 'g');
      this.stale = false;
    }
    return text.replace(this.pattern, REDACTED);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Turns an Error into plain fields; never copy enumerable properties such as a response body. */
export type ErrorDescriber = (err: Error) => Record<string, unknown>;

const describeBriefly: ErrorDescriber = (err) => ({ name: err.name, message: err.message });

export class Redactor {
  private readonly describeError: ErrorDescriber;

  constructor(
    readonly registry: SecretRegistry = defaultSecretRegistry,
    options: { describeError?: ErrorDescriber } = {},
  ) {
    this.describeError = options.describeError ?? describeBriefly;
  }

  redactString(text: string): string {
    let out = this.registry.scrub(text);
    out = out.replace(PEM_PRIVATE_KEY, '[REDACTED PRIVATE KEY]');
    out = out.replace(COMPACT_JOSE, (m) => (m.split('.').length === 5 ? '[REDACTED JWE]' : '[REDACTED JWT]'));
    out = out.replace(AUTH_HEADER, (_m, scheme: string, space: string) => `${scheme}${space}${REDACTED}`);
    out = out.replace(ASSIGNMENT, (_m, name: string) => `${name}=${REDACTED}`);
    const isJwk = /\\?"kty\\?"/.test(out);
    out = out.replace(EMBEDDED_JSON_FIELD, (m, q: string, name: string, sep: string) => {
      if (isSensitiveKey(name) || (isJwk && JWK_PRIVATE_MEMBERS.has(name))) return `${q}${name}${q}${sep}${q}${REDACTED}${q}`;
      return m;
    });
    return out;
  }

  /** A redacted deep copy of `value`, safe to serialise. */
  redact(value: unknown): unknown {
    return this.walk(value, new WeakSet(), 0);
  }

  private walk(value: unknown, seen: WeakSet<object>, depth: number): unknown {
    if (typeof value === 'string') return this.redactString(value);
    if (value === null || typeof value !== 'object') {
      if (typeof value === 'bigint') return value.toString();
      if (typeof value === 'function' || typeof value === 'symbol') return undefined;
      return value;
    }
    if (value instanceof Uint8Array || value instanceof ArrayBuffer) return REDACTED;
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    if (seen.has(value)) return '[Circular]';
    if (value instanceof Error) return this.walk(this.describeError(value), seen, depth);
    if (depth >= 12) return '[Truncated]';
    seen.add(value);
    try {
      if (Array.isArray(value)) return value.map((v) => this.walk(v, seen, depth + 1));
      if (value instanceof Map) return this.walk(Object.fromEntries(value), seen, depth + 1);
      if (value instanceof Set) return this.walk([...value], seen, depth + 1);
      const source = value as Record<string, unknown>;
      const isJwk = typeof source['kty'] === 'string';
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(source)) {
        if (isSensitiveKey(k) || (isJwk && JWK_PRIVATE_MEMBERS.has(k))) {
          out[k] = REDACTED;
        } else {
          out[k] = this.walk(v, seen, depth + 1);
        }
      }
      return out;
    } finally {
      seen.delete(value);
    }
  }
}

export const defaultSecretRegistry = new SecretRegistry();
export const defaultRedactor = new Redactor(defaultSecretRegistry);

/** Registers a secret with the process-wide registry used by the default logger and recorder. */
export function registerSecret(value: string | Uint8Array): void {
  defaultSecretRegistry.register(value);
}
