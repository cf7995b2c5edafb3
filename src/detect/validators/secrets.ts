// Credentials: JWTs, PEM private-key blocks, and generic high-entropy secrets behind an entropy threshold.
// Placeholders and vendors' documented example keys are rejected: they fill docs and prompts and protect nothing.

import { DEFAULT_DAMP_WORDS, scoreConfidence } from './context.js';
import { reject, type ValidationResult, type ValidatorContext, type Validator } from './types.js';

const SECRET_WORDS = {
  boost: ['password', 'passwd', 'pwd', 'secret', 'token', 'api key', 'access key', 'private key', 'key', 'auth', 'bearer', 'credential'],
  damp: DEFAULT_DAMP_WORDS,
};

// ---------- JWT ----------

const B64URL = /^[A-Za-z0-9_-]+$/;

/** Decodes unpadded base64url to a JSON object, or null; a remainder of 1 char is never valid base64. */
function decodeJsonPart(part: string): Record<string, unknown> | null {
  if (!B64URL.test(part) || part.length % 4 === 1) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** jwt.io's long-standing sample token (HS256, "John Doe", secret "your-256-bit-secret"). */
export const EXAMPLE_JWTS: readonly string[] = [
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
];

export function validateJwt(match: string, context: ValidatorContext): ValidationResult {
  const parts = match.split('.');
  if (parts.length !== 3) return reject('bad format');
  const [h, p, sig] = parts as [string, string, string];
  const header = decodeJsonPart(h);
  if (!header) return reject('bad header');
  if (typeof header.alg !== 'string') return reject('no alg');
  if (!decodeJsonPart(p)) return reject('bad payload');
  // Unsecured JWTs (alg "none") end in an empty signature; every other alg must carry one.
  if (header.alg.toLowerCase() === 'none') {
    if (sig !== '') return reject('bad signature');
  } else if (!B64URL.test(sig) || sig.length % 4 === 1) {
    return reject('bad signature');
  }
  if (EXAMPLE_JWTS.includes(match)) return reject('documented example');
  return { valid: true, confidence: scoreConfidence(0.9, context, SECRET_WORDS), reason: header.alg };
}

// ---------- PEM private keys ----------

export const PEM_KEY_LABELS: readonly string[] = ['RSA PRIVATE KEY', 'EC PRIVATE KEY', 'DSA PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'PRIVATE KEY'];

const PEM_BLOCK = /^-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END ([A-Z ]+)-----$/;

export function validatePemPrivateKey(match: string, context: ValidatorContext): ValidationResult {
  // Keys pasted inside JSON strings arrive with literal "\n" escapes rather than newlines.
  const text = match.replace(/\\r|\\n/g, '\n').trim();
  const m = PEM_BLOCK.exec(text);
  if (!m) return reject('bad format');
  const [, begin, rawBody, end] = m as unknown as [string, string, string, string];
  if (!PEM_KEY_LABELS.includes(begin)) return reject('not a private key label');
  if (begin !== end) return reject('label mismatch');
  let body = rawBody;
  // Legacy OpenSSL encryption (RFC 1421 headers: Proc-Type, DEK-Info) precedes the base64 after a blank line.
  const headerEnd = /\n[ \t]*\r?\n/.exec(body);
  if (/^\s*Proc-Type:/.test(body) && headerEnd) body = body.slice(headerEnd.index + headerEnd[0].length);
  const b64 = body.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return reject('bad body');
  // The smallest real key (an Ed25519 PKCS#8) is 48 bytes; anything shorter is a truncated paste or stand-in.
  if (b64.length < 64) return reject('body too short');
  return { valid: true, confidence: scoreConfidence(0.95, context, SECRET_WORDS), reason: begin };
}

// ---------- generic high-entropy secrets ----------

/** Shannon entropy of the string's character distribution, in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const n = [...s].length;
  let h = 0;
  for (const c of counts.values()) {
    const p = c / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Vendors' documented example credentials (AWS IAM docs, Stripe API docs). */
export const EXAMPLE_SECRETS: readonly string[] = [
  'AKIAIOSFODNN7EXAMPLE',
  'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'sk_test_4eC39HqLyjWDarjtT1zdp7dc',
  'pk_test_TYooMQauvdEDq54NiTphI7jx',
];

const PLACEHOLDER_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/<[^<>]*>|\{\{.*\}\}|\$\{.*\}|%[A-Z_]+%/, 'template placeholder'],
  [/x{4,}|\*{4,}|\.{3}/i, 'masked or elided'],
  [/your[-_ ]?(?:api[-_ ]?)?(?:key|token|secret|password)/i, 'placeholder'],
  [/example|sample|dummy|placeholder|changeme|redacted|replace[-_]?me|insert[-_]?here/i, 'placeholder'],
  [/(.)\1{5,}/, 'repeated characters'],
];

/** Six or more consecutive ascending characters ("123456", "abcdef"): typed by a person, not generated. */
function hasSequentialRun(s: string, run = 6): boolean {
  let len = 1;
  for (let i = 1; i < s.length; i++) {
    len = s.charCodeAt(i) === s.charCodeAt(i - 1) + 1 ? len + 1 : 1;
    if (len >= run) return true;
  }
  return false;
}

/**
 * camelCase / PascalCase / snake_case / kebab-case words ("getUserAccountSettings") clear the entropy bar
 * but are code. Words must be an optional capital plus lower case, averaging 3+ letters: random mixed-case
 * letters capitalise about every other character and so break into 1–2 letter pieces.
 */
function looksLikeIdentifier(s: string): boolean {
  if (!/^[A-Za-z_-]+$/.test(s)) return false;
  const words = s.split(/[_-]+|(?=[A-Z])/).filter(Boolean);
  if (words.length < 2 || !words.every((w) => /^[A-Z]?[a-z]+$/.test(w))) return false;
  return s.replace(/[_-]/g, '').length / words.length >= 3;
}

export interface GenericSecretOptions {
  minLength?: number;
  /** Bits per char. Random base64 of 20+ chars scores ~4.2+, random hex of 32+ ~3.7; English identifiers mostly under 3.5. */
  minEntropy?: number;
  /** Hex shorter than this is more often a short hash, colour or id than a key. */
  minHexLength?: number;
}

export function validateGenericSecret(match: string, context: ValidatorContext, options: GenericSecretOptions = {}): ValidationResult {
  const minLength = options.minLength ?? 20;
  const minEntropy = options.minEntropy ?? 3.5;
  const minHexLength = options.minHexLength ?? 32;
  if (EXAMPLE_SECRETS.includes(match)) return reject('documented example');
  for (const [re, why] of PLACEHOLDER_PATTERNS) if (re.test(match)) return reject(why);
  if (match.length < minLength) return reject('too short');
  if (/\s/.test(match)) return reject('contains whitespace');
  if (/^\d+$/.test(match)) return reject('digits only');
  if (/^[0-9a-f]+$/i.test(match) && match.length < minHexLength) return reject('short hex');
  if (hasSequentialRun(match)) return reject('sequential characters');
  // Single-class strings ("abcdefghij…", "ABCDEF…") are words or constants; generated secrets mix classes.
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((re) => re.test(match)).length;
  if (classes < 2) return reject('single character class');
  if (looksLikeIdentifier(match)) return reject('identifier');
  const h = shannonEntropy(match);
  if (h < minEntropy) return reject('low entropy');
  // Long hex is as often a digest or commit id as a key.
  const base = /^[0-9a-f]+$/i.test(match) ? 0.35 : 0.5;
  return { valid: true, confidence: scoreConfidence(base, context, SECRET_WORDS) };
}

export function genericSecretValidator(options: GenericSecretOptions = {}): Validator {
  return (match, context) => validateGenericSecret(match, context, options);
}
