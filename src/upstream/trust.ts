// What upstream TLS certificates are verified against: Node's bundled roots, the system bundle (where
// operators add their own roots with update-ca-certificates), NODE_EXTRA_CA_CERTS and tls.upstream_ca.

import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { SluiceError } from '../errors';

/** Debian/Ubuntu, then RHEL/Fedora; SSL_CERT_FILE names another when set. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export interface UpstreamTrust {
  context: SecureContext;
  /** Where the trusted roots came from, for the start log. */
  sources: string[];
}

/** Builds the one context every upstream connection verifies with. A configured file that is unreadable or holds no certificate is an error. */
export async function loadUpstreamTrust(extraFiles: readonly string[]): Promise<UpstreamTrust> {
  const ca: string[] = [...rootCertificates];
  const sources = ['node'];
  const readPems = (file: string) =>
    readFile(file, 'utf8').then(
      (t) => t.match(PEM_BLOCK) ?? [],
      () => [],
    );
  const bundles = [process.env.SSL_CERT_FILE, ...SYSTEM_BUNDLES].filter((f): f is string => Boolean(f));
  for (const file of bundles) {
    const pems = await readPems(file);
    if (pems.length === 0) continue;
    ca.push(...pems);
    sources.push(file);
    break;
  }
  // Node reads NODE_EXTRA_CA_CERTS itself (and only warns when it cannot); a custom context must add it again.
  const envExtra = process.env.NODE_EXTRA_CA_CERTS;
  if (envExtra) {
    const pems = await readPems(envExtra);
    if (pems.length) {
      ca.push(...pems);
      sources.push(envExtra);
    }
  }
  for (const file of extraFiles) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `tls.upstream_ca: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    const pems = text.match(PEM_BLOCK) ?? [];
    if (pems.length === 0) throw new SluiceError('SLUICE_CONFIG_INVALID', `tls.upstream_ca: ${file} holds no PEM certificate`);
    for (const pem of pems) {
      try {
        new X509Certificate(pem);
      } catch (err) {
        throw new SluiceError('SLUICE_CONFIG_INVALID', `tls.upstream_ca: ${file} holds a certificate that does not parse: ${(err as Error).message}`, { cause: err });
      }
    }
    ca.push(...pems);
    sources.push(file);
  }
  return { context: createSecureContext({ ca }), sources };
}
