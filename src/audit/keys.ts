// The audit log's Ed25519 signing keys: created on first run, rotated on request, public halves exported as `.pub`.
// tweetnacl makes the key pairs; signing and verifying go through node:crypto (OpenSSL), ~100x faster per checkpoint.

import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import nacl from 'tweetnacl';
import { SluiceError } from '../errors';
import { namesIn } from './segments';

/** What a `.pub` file holds: all an auditor needs to verify checkpoints signed by this key. */
export interface PublicKeyInfo {
  alg: 'Ed25519';
  key_id: string;
  /** Raw 32-byte Ed25519 public key, base64. */
  public_key: string;
}

/** A key that signed checkpoints before a rotation. Its secret stays only until the handover checkpoint is written. */
export interface RetiredKey {
  key_id: string;
  public_key: string;
  secret_key?: string;
  created: string;
  retired: string;
}

/** The key file (mode 0600). `secret_key` is tweetnacl's 64-byte form, seed ‖ public key, base64. */
export interface KeyFile {
  alg: 'Ed25519';
  key_id: string;
  public_key: string;
  secret_key: string;
  created: string;
  retired: RetiredKey[];
}

export class SigningKey {
  readonly keyId: string;
  readonly publicKey: Buffer;
  private readonly privateKey: KeyObject;

  constructor(secretKey: Buffer) {
    if (secretKey.length !== 64) throw new TypeError('an Ed25519 secret key is 64 bytes (seed ‖ public key)');
    this.publicKey = Buffer.from(secretKey.subarray(32));
    this.keyId = keyIdOf(this.publicKey);
    this.privateKey = createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: secretKey.subarray(0, 32).toString('base64url'), x: this.publicKey.toString('base64url') },
      format: 'jwk',
    });
  }

  sign(data: Buffer): Buffer {
    return sign(null, data, this.privateKey);
  }

  info(): PublicKeyInfo {
    return { alg: 'Ed25519', key_id: this.keyId, public_key: this.publicKey.toString('base64') };
  }
}

/** The first 16 hex characters of SHA-256 of the raw public key. */
export function keyIdOf(publicKey: Buffer): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 16);
}

export function defaultKeyFile(dataDir: string): string {
  return join(dataDir, 'keys', 'audit-signing.json');
}

const verifiers = new Map<string, KeyObject>();

/** Ed25519 verification of `sig` over `data` by a raw 32-byte public key. */
export function verifySignature(publicKey: Buffer, data: Buffer, sig: Buffer): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  const id = publicKey.toString('base64');
  let key = verifiers.get(id);
  if (!key) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' });
    verifiers.set(id, key);
  }
  return verify(null, data, key, sig);
}

/** The key ring a writer signs with: the current key and the retired keys whose secret is still held. */
export interface KeyRing {
  file: string;
  current: SigningKey;
  /** Retired keys by id; `signer` is set while the key's secret is kept for the handover. */
  retired: Map<string, { info: PublicKeyInfo; signer: SigningKey | null }>;
  /** Where the current key's `.pub` was written beside the key file. */
  publicKeyFile: string;
}

/**
 * Loads the key file, creating it (and its 0700 directory) on first run, and writes a `.pub` for every key
 * beside it and under `<auditDir>/keys/` so an operator can hand the audit directory to an auditor as is.
 */
export async function loadOrCreateKeys(file: string, opts: { auditDir: string; now?: () => number }): Promise<KeyRing> {
  let kf = await readKeyFile(file);
  if (!kf) {
    kf = newKeyFile(new Date((opts.now ?? Date.now)()).toISOString());
    await writeKeyFile(file, kf);
  }
  const ring = toRing(file, kf);
  const infos = [ring.current.info(), ...[...ring.retired.values()].map((r) => r.info)];
  for (const info of infos) {
    await writePublicKey(dirname(file), info);
    await writePublicKey(join(opts.auditDir, 'keys'), info);
  }
  return ring;
}

/**
 * Makes a new current key and retires the old one, keeping the old secret until a writer has written the
 * handover: a `key_rotation` record sealed by a checkpoint the old key signs, so a verifier that trusts only
 * the old key learns the new one from the log itself.
 */
export async function rotateKey(
  file: string,
  opts: { auditDir?: string; now?: () => number } = {},
): Promise<{ old_key_id: string; new_key_id: string; public_key_file: string }> {
  const kf = await readKeyFile(file);
  if (!kf) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `audit.key_file: no signing key at ${file}; it is created when the audit log first opens, so there is nothing to rotate`);
  }
  const now = new Date((opts.now ?? Date.now)()).toISOString();
  const next = newKeyFile(now);
  next.retired = [
    ...kf.retired,
    { key_id: kf.key_id, public_key: kf.public_key, secret_key: kf.secret_key, created: kf.created, retired: now },
  ];
  await writeKeyFile(file, next);
  const info: PublicKeyInfo = { alg: 'Ed25519', key_id: next.key_id, public_key: next.public_key };
  const public_key_file = await writePublicKey(dirname(file), info);
  if (opts.auditDir) await writePublicKey(join(opts.auditDir, 'keys'), info);
  return { old_key_id: kf.key_id, new_key_id: next.key_id, public_key_file };
}

/**
 * Forgets the secrets of retired keys once the handover is on disk, so a stolen key file cannot re-sign
 * history. Re-reads the file first: a `rotate-key` run since the writer loaded it must not be undone.
 */
export async function dropRetiredSecrets(file: string): Promise<void> {
  const kf = await readKeyFile(file);
  if (!kf || !kf.retired.some((r) => r.secret_key !== undefined)) return;
  kf.retired = kf.retired.map(({ secret_key: _drop, ...rest }) => rest);
  await writeKeyFile(file, kf);
}

/** Reads a `.pub` file (or a key file, whose public half is used). */
export async function readPublicKeyFile(path: string): Promise<PublicKeyInfo> {
  let parsed: Partial<PublicKeyInfo>;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<PublicKeyInfo>;
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot read public key ${path}: ${(err as Error).message}`, { cause: err });
  }
  const raw = typeof parsed.public_key === 'string' ? Buffer.from(parsed.public_key, 'base64') : Buffer.alloc(0);
  if (parsed.alg !== 'Ed25519' || raw.length !== 32) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${path} is not an Ed25519 public key file ({"alg":"Ed25519","key_id","public_key"})`);
  }
  const key_id = keyIdOf(raw);
  if (parsed.key_id !== undefined && parsed.key_id !== key_id) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${path}: key_id ${String(parsed.key_id)} does not match its public key (${key_id})`);
  }
  return { alg: 'Ed25519', key_id, public_key: raw.toString('base64') };
}

/** The `.pub` files in `dir` (an audit directory's `keys/`); none when it does not exist. */
export async function readPublicKeyDir(dir: string): Promise<PublicKeyInfo[]> {
  const out: PublicKeyInfo[] = [];
  for (const n of (await namesIn(dir)).filter((x) => x.endsWith('.pub')).sort()) out.push(await readPublicKeyFile(join(dir, n)));
  return out;
}

function newKeyFile(created: string): KeyFile {
  const pair = nacl.sign.keyPair();
  const publicKey = Buffer.from(pair.publicKey);
  return {
    alg: 'Ed25519',
    key_id: keyIdOf(publicKey),
    public_key: publicKey.toString('base64'),
    secret_key: Buffer.from(pair.secretKey).toString('base64'),
    created,
    retired: [],
  };
}

function toRing(file: string, kf: KeyFile): KeyRing {
  const current = new SigningKey(Buffer.from(kf.secret_key, 'base64'));
  if (current.keyId !== kf.key_id) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `audit.key_file ${file}: key_id ${kf.key_id} does not match its key (${current.keyId}); restore the file from backup`);
  }
  const retired = new Map<string, { info: PublicKeyInfo; signer: SigningKey | null }>();
  for (const r of kf.retired) {
    retired.set(r.key_id, {
      info: { alg: 'Ed25519', key_id: r.key_id, public_key: r.public_key },
      signer: r.secret_key ? new SigningKey(Buffer.from(r.secret_key, 'base64')) : null,
    });
  }
  return { file, current, retired, publicKeyFile: join(dirname(file), `${current.keyId}.pub`) };
}

async function readKeyFile(file: string): Promise<KeyFile | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SluiceError('SLUICE_CONFIG_INVALID', `audit.key_file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const kf = JSON.parse(text) as KeyFile;
    if (kf.alg !== 'Ed25519' || typeof kf.secret_key !== 'string' || typeof kf.key_id !== 'string') throw new Error('not an Ed25519 key file');
    kf.retired ??= [];
    return kf;
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `audit.key_file ${file}: ${(err as Error).message}; restore it from backup`, { cause: err });
  }
}

/** Written to a temporary file and renamed over the old one, so a crash never leaves half a key file. */
async function writeKeyFile(file: string, kf: KeyFile): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(kf, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600); // a temp file left by a crash keeps its old mode through open(); make it exact
  await rename(tmp, file);
}

async function writePublicKey(dir: string, info: PublicKeyInfo): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${info.key_id}.pub`);
  const fh = await open(path, 'w', 0o644);
  try {
    await fh.writeFile(`${JSON.stringify(info)}\n`);
  } finally {
    await fh.close();
  }
  return path;
}
