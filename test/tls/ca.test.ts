// The interception CA: `sluice ca init/path`, leaves that real TLS clients accept when they trust the CA,
// refuse when they do not, and the bounded leaf cache.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect, createServer, type Server } from 'node:tls';
import { CertificateAuthority, caPaths, initCa } from '../../src/tls/ca';
import { runSluice } from '../fixtures/cli';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-ca-'));
  dirs.push(d);
  return d;
}

/** A TLS server that presents `ca`'s leaf for whatever SNI the client sends. */
async function sniServer(ca: CertificateAuthority): Promise<{ server: Server; port: number }> {
  const server = createServer({
    SNICallback: (name, cb) => {
      ca.context(name).then(
        (ctx) => cb(null, ctx),
        (err: Error) => cb(err),
      );
    },
  }, (socket) => socket.end('hello'));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { server, port: (server.address() as AddressInfo).port };
}

function handshake(port: number, servername: string, ca?: string): Promise<{ authorized: boolean; error?: string; cert?: X509Certificate; body: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername, ...(ca ? { ca } : {}), rejectUnauthorized: false }, () => {
      const peer = s.getPeerX509Certificate();
      let body = '';
      s.setEncoding('utf8').on('data', (d: string) => (body += d));
      s.on('end', () => resolve({ authorized: s.authorized, ...(s.authorizationError ? { error: String(s.authorizationError) } : {}), ...(peer ? { cert: peer } : {}), body }));
    });
    s.on('error', (err) => resolve({ authorized: false, error: err.message, body: '' }));
  });
}

test('initCa creates an EC P-256 CA with a 0600 key, refuses to replace it without force', async () => {
  const dir = tempDir();
  const paths = await initCa(dir);
  assert.deepEqual(paths, caPaths(dir));
  assert.equal(statSync(paths.key).mode & 0o777, 0o600);
  const cert = new X509Certificate(await import('node:fs').then((fs) => fs.readFileSync(paths.cert)));
  assert.equal(cert.ca, true);
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(cert.verify(cert.publicKey), 'self-signed');
  await assert.rejects(initCa(dir), { code: 'SLUICE_CONFIG_INVALID', message: /already exists.*--force/ });
  await initCa(dir, { force: true });
  assert.notEqual(new X509Certificate(await import('node:fs').then((fs) => fs.readFileSync(paths.cert))).serialNumber, cert.serialNumber);
});

test('a TLS client that trusts the CA accepts minted leaves for DNS names and IPs; one that does not, refuses', async () => {
  const dir = tempDir();
  const paths = await initCa(dir);
  const ca = await CertificateAuthority.load(paths);
  const { server, port } = await sniServer(ca);
  try {
    const ok = await handshake(port, 'api.openai.com', ca.certPem);
    assert.equal(ok.authorized, true, ok.error);
    assert.equal(ok.body, 'hello');
    assert.equal(ok.cert?.checkHost('api.openai.com'), 'api.openai.com');
    assert.equal(ok.cert?.checkHost('api.anthropic.com'), undefined);
    assert.ok(ok.cert!.checkIssued(new X509Certificate(ca.certPem)));
    // Short-lived: a week at most.
    assert.ok(new Date(ok.cert!.validTo).getTime() - Date.now() <= 7 * 86_400_000 + 60_000);
    const untrusted = await handshake(port, 'api.openai.com');
    assert.equal(untrusted.authorized, false);
    assert.match(untrusted.error ?? '', /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/);
  } finally {
    server.close();
  }
  // An IP literal gets an IP SAN.
  const ipCtx = await ca.context('10.1.2.3');
  assert.ok(ipCtx);
});

test('leaves are cached per host (LRU, bounded), concurrent requests share one mint', async () => {
  const dir = tempDir();
  const ca = await CertificateAuthority.load(await initCa(dir), { cacheSize: 2 });
  const [a, b] = await Promise.all([ca.context('a.example'), ca.context('A.example')]);
  assert.equal(a, b);
  assert.deepEqual(ca.stats(), { mints: 1, hits: 1, cached: 1 });
  await ca.context('b.example');
  await ca.context('a.example'); // a is now the most recently used
  await ca.context('c.example'); // evicts b
  assert.deepEqual(ca.stats(), { mints: 3, hits: 2, cached: 2 });
  await ca.context('a.example');
  await ca.context('b.example');
  assert.deepEqual(ca.stats(), { mints: 4, hits: 3, cached: 2 });
});

test('load refuses a missing CA, a non-CA certificate and a key that does not match, naming the file', async () => {
  const dir = tempDir();
  await assert.rejects(CertificateAuthority.load(caPaths(dir)), { code: 'SLUICE_CONFIG_INVALID', message: /cannot read the CA certificate .*sluice ca init/ });
  const one = await initCa(join(dir, 'one'));
  const two = await initCa(join(dir, 'two'));
  await assert.rejects(CertificateAuthority.load({ cert: one.cert, key: two.key }), { code: 'SLUICE_CONFIG_INVALID', message: /ca-key\.pem is unusable: the key does not belong/ });
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate');
  await assert.rejects(CertificateAuthority.load({ cert: garbage, key: one.key }), { code: 'SLUICE_CONFIG_INVALID', message: /garbage\.pem is not a PEM certificate/ });
  // A leaf is not a CA.
  const ca = await CertificateAuthority.load(one);
  const { server, port } = await sniServer(ca);
  const leaf = await handshake(port, 'x.example', ca.certPem);
  server.close();
  const leafFile = join(dir, 'leaf.pem');
  writeFileSync(leafFile, leaf.cert!.toString());
  await assert.rejects(CertificateAuthority.load({ cert: leafFile, key: one.key }), { code: 'SLUICE_CONFIG_INVALID', message: /not a CA certificate/ });
});

test('sluice ca init / ca path print the certificate path; init refuses to replace; path fails without a CA', async () => {
  const dir = tempDir();
  const missing = await runSluice(['ca', 'path'], { cwd: dir });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /SLUICE_CONFIG_INVALID: cannot read the CA certificate .*run `sluice ca init`/);
  const init = await runSluice(['ca', 'init'], { cwd: dir });
  assert.equal(init.code, 0, init.stderr);
  const expected = join(dir, 'sluice-data', 'ca', 'ca.pem');
  assert.equal(init.stdout, `${expected}\n`);
  const again = await runSluice(['ca', 'init'], { cwd: dir });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  const path = await runSluice(['ca', 'path'], { cwd: dir });
  assert.equal(path.code, 0, path.stderr);
  assert.equal(path.stdout, `${expected}\n`);
  const bad = await runSluice(['ca', 'frob'], { cwd: dir });
  assert.equal(bad.code, 2);
});
