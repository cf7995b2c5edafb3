// The interception CA: created under data_dir by `sluice ca init` (or an enterprise CA loaded from files), and
// per-host leaf certificates minted on demand, signed by it, cached in a bounded LRU as ready TLS contexts.

import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { SluiceError } from '../errors';
import { bits, certificateSubject, explicit, octets, oid, seq, set, time, tlv, uint, utf8 } from './der';

// Fixed DER pieces of every certificate Sluice makes.
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const RSA_SHA256 = seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
const V3 = explicit(0, uint(Buffer.from([2])));
const CRITICAL = Buffer.from([0x01, 0x01, 0xff]);
const LEAF_EXTENSIONS_TAIL = Buffer.concat([
  seq(oid('2.5.29.19'), CRITICAL, octets(seq())), // basicConstraints: not a CA
  seq(oid('2.5.29.15'), CRITICAL, octets(tlv(0x03, Buffer.from([0x07, 0x80])))), // keyUsage: digitalSignature
  seq(oid('2.5.29.37'), octets(seq(oid('1.3.6.1.5.5.7.3.1')))), // extKeyUsage: serverAuth
]);
const DAY = 86_400_000;
/** Leaves are short-lived: clients only need them for the connections Sluice terminates. */
const LEAF_DAYS = 7;
/** Back-dated so a client whose clock runs a little behind still accepts a fresh leaf. */
const CLOCK_SKEW_MS = 3_600_000;
const CA_YEARS = 10;

export interface CaPaths {
  cert: string;
  key: string;
}

/** Where `sluice ca init` keeps the CA: `<data_dir>/ca/ca.pem` and `<data_dir>/ca/ca-key.pem` (mode 0600). */
export function caPaths(dataDir: string): CaPaths {
  // Absolute: the path is handed to clients (NODE_EXTRA_CA_CERTS=…) that run from other directories.
  const dir = resolve(dataDir, 'ca');
  return { cert: join(dir, 'ca.pem'), key: join(dir, 'ca-key.pem') };
}

/**
 * Creates an EC P-256 CA under `dataDir`. An existing CA is never replaced unless `force` is set: clients trust
 * it, and replacing it silently would break every one of them.
 */
export async function initCa(dataDir: string, options: { force?: boolean; commonName?: string } = {}): Promise<CaPaths> {
  const paths = caPaths(dataDir);
  if (!options.force) {
    const exists = await readFile(paths.cert).then(
      () => true,
      () => false,
    );
    if (exists) throw new SluiceError('SLUICE_CONFIG_INVALID', `a CA already exists at ${paths.cert}; clients trust it. Use --force to replace it (every client must then trust the new one).`);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Date.now();
  const name = seq(
    set(seq(oid('2.5.4.3'), utf8(options.commonName ?? 'Sluice Interception CA'))),
    set(seq(oid('2.5.4.10'), utf8('Sluice'))),
  );
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const extensions = [
    seq(oid('2.5.29.19'), CRITICAL, octets(seq(Buffer.from([0x01, 0x01, 0xff]), uint(Buffer.from([0]))))), // CA, pathLen 0
    seq(oid('2.5.29.15'), CRITICAL, octets(tlv(0x03, Buffer.from([0x01, 0x86])))), // keyCertSign, cRLSign, digitalSignature
    seq(oid('2.5.29.14'), octets(octets(keyId(spki)))), // subjectKeyIdentifier
  ];
  const certDer = signCertificate(
    tbsCertificate(name, name, new Date(now - CLOCK_SKEW_MS), new Date(now + CA_YEARS * 365 * DAY), spki, extensions, ECDSA_SHA256),
    privateKey,
  );
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  await mkdir(join(dataDir, 'ca'), { recursive: true, mode: 0o700 });
  // Key first, each written whole then renamed, so a crash never leaves a certificate without its key.
  await writeAtomic(paths.key, pemBlock('PRIVATE KEY', pkcs8), 0o600);
  await writeAtomic(paths.cert, pemBlock('CERTIFICATE', certDer), 0o644);
  return paths;
}

export interface MintStats {
  mints: number;
  hits: number;
  cached: number;
}

/** A loaded CA that mints leaves. One leaf key pair serves every host: minting is then one signature. */
export class CertificateAuthority {
  readonly certPem: string;
  /** The CA certificate followed by any intermediates, sent after each leaf. */
  readonly #chainPem: string;
  /** The CA's subject, byte for byte: every leaf's issuer. */
  readonly #issuer: Buffer;
  readonly #issuerNotAfter: number;
  readonly #signingKey: KeyObject;
  readonly #signatureAlgorithm: Buffer;
  readonly #leafSpki: Buffer;
  readonly #leafKeyPem: string;
  readonly #capacity: number;
  /** Insertion-ordered: the first entry is the least recently used. */
  readonly #cache = new Map<string, Promise<SecureContext>>();
  readonly #stats: MintStats = { mints: 0, hits: 0, cached: 0 };

  private constructor(cert: X509Certificate, certPem: string, chainPem: string, signingKey: KeyObject, capacity: number) {
    this.certPem = certPem;
    this.#chainPem = chainPem;
    this.#issuer = certificateSubject(cert.raw);
    this.#issuerNotAfter = new Date(cert.validTo).getTime();
    this.#signingKey = signingKey;
    this.#signatureAlgorithm = signingKey.asymmetricKeyType === 'rsa' ? RSA_SHA256 : ECDSA_SHA256;
    const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#leafSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    this.#leafKeyPem = leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    this.#capacity = capacity;
  }

  /**
   * Loads a CA certificate and its EC P-256 or RSA key (PEM), e.g. `sluice ca init`'s or an enterprise
   * intermediate; `chain` files (intermediates) are sent with every leaf. Throws SLUICE_CONFIG_INVALID naming
   * the file when something does not load or the pair does not match.
   */
  static async load(paths: CaPaths, options: { chain?: readonly string[]; cacheSize?: number } = {}): Promise<CertificateAuthority> {
    const read = async (file: string, what: string) => {
      try {
        return await readFile(file, 'utf8');
      } catch (err) {
        throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot read the CA ${what} ${file}: ${(err as Error).message}${what === 'certificate' ? ' (run `sluice ca init` to create one)' : ''}`, { cause: err });
      }
    };
    const certPem = await read(paths.cert, 'certificate');
    const keyPem = await read(paths.key, 'key');
    let cert: X509Certificate;
    let signingKey: KeyObject;
    try {
      cert = new X509Certificate(certPem);
    } catch (err) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${paths.cert} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
    if (!cert.ca) throw new SluiceError('SLUICE_CONFIG_INVALID', `${paths.cert} is not a CA certificate (basicConstraints CA:TRUE is missing)`);
    try {
      signingKey = createPrivateKey(keyPem);
      if (!cert.checkPrivateKey(signingKey)) throw new Error('the key does not belong to the certificate');
      const type = signingKey.asymmetricKeyType;
      const curve = signingKey.asymmetricKeyDetails?.namedCurve;
      if (type !== 'rsa' && !(type === 'ec' && curve === 'prime256v1')) throw new Error(`a ${type}${curve ? ` ${curve}` : ''} key is not supported`);
    } catch (err) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `CA key ${paths.key} is unusable: ${(err as Error).message} (EC P-256 or RSA, PEM)`, { cause: err });
    }
    const chain = await Promise.all((options.chain ?? []).map((f) => read(f, 'chain certificate')));
    const chainPem = [certPem.trim(), ...chain.map((c) => c.trim())].join('\n') + '\n';
    return new CertificateAuthority(cert, certPem, chainPem, signingKey, options.cacheSize ?? 1000);
  }

  /**
   * A TLS context presenting a leaf for `host` (a DNS name or an IP literal), minted on first use and cached
   * (LRU, bounded). Concurrent calls for one host share a single mint.
   */
  context(host: string): Promise<SecureContext> {
    const name = host.toLowerCase();
    const hit = this.#cache.get(name);
    if (hit) {
      this.#stats.hits++;
      // Re-insert to mark it most recently used.
      this.#cache.delete(name);
      this.#cache.set(name, hit);
      return hit;
    }
    const minted = this.#mint(name);
    this.#cache.set(name, minted);
    // A failed mint must not stay cached.
    minted.catch(() => this.#cache.get(name) === minted && this.#cache.delete(name));
    if (this.#cache.size > this.#capacity) this.#cache.delete(this.#cache.keys().next().value!);
    return minted;
  }

  stats(): MintStats {
    return { ...this.#stats, cached: this.#cache.size };
  }

  /**
   * A leaf for `host` as PEM (certificate chain and the shared leaf key), uncached: for servers that take
   * files, such as the gateway over HTTPS in tests and benchmarks.
   */
  issue(host: string): { cert: string; key: string } {
    return { cert: this.#leafPem(host.toLowerCase()), key: this.#leafKeyPem };
  }

  // Synchronous work (one signature, one context); async so callers treat cached and fresh leaves alike.
  async #mint(host: string): Promise<SecureContext> {
    this.#stats.mints++;
    return createSecureContext({ cert: this.#leafPem(host), key: this.#leafKeyPem });
  }

  #leafPem(host: string): string {
    const now = Date.now();
    const ip = isIP(host);
    const san = ip ? tlv(0x87, ipBytes(host, ip)) : tlv(0x82, Buffer.from(host, 'ascii'));
    const extensions = [seq(oid('2.5.29.17'), octets(seq(san))), LEAF_EXTENSIONS_TAIL];
    const subject = seq(set(seq(oid('2.5.4.3'), utf8(host))));
    const notAfter = new Date(Math.min(now + LEAF_DAYS * DAY, this.#issuerNotAfter));
    const tbs = tbsCertificate(this.#issuer, subject, new Date(now - CLOCK_SKEW_MS), notAfter, this.#leafSpki, extensions, this.#signatureAlgorithm);
    const der = signCertificate(tbs, this.#signingKey);
    return `${pemBlock('CERTIFICATE', der)}${this.#chainPem}`;
  }
}

function tbsCertificate(issuer: Buffer, subject: Buffer, notBefore: Date, notAfter: Date, spki: Buffer, extensions: Buffer[], algorithm: Buffer): Buffer {
  return seq(V3, uint(randomSerial()), algorithm, issuer, seq(time(notBefore), time(notAfter)), subject, spki, explicit(3, seq(...extensions)));
}

/** Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature } (Node signs ECDSA in DER, as X.509 wants). */
function signCertificate(tbs: Buffer, key: KeyObject): Buffer {
  const algorithm = key.asymmetricKeyType === 'rsa' ? RSA_SHA256 : ECDSA_SHA256;
  return seq(tbs, algorithm, bits(sign('sha256', tbs, key)));
}

/**
 * Subject key identifier: SHA-1 of the public key bits (RFC 5280 method 1). A P-256 SPKI ends with its
 * 65-byte uncompressed point, which is exactly those bits.
 */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
}

function ipBytes(host: string, family: number): Buffer {
  if (family === 4) return Buffer.from(host.split('.').map(Number));
  // Expand "::" and read eight 16-bit groups.
  const [head, tail] = host.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** 16 random bytes, first one 0x01-0x7f: a positive serial of fixed length, unique per certificate. */
function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

function pemBlock(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}
