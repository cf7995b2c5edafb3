// Client certificates on a TLS forward proxy (HTTPS_PROXY=https://…) with curl and the openai SDK through
// undici's ProxyAgent: a certificate from tls.client_ca names the caller; a foreign one never does.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import OpenAI, { type ClientOptions } from 'openai';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';
import { mockReplyText } from '../fixtures/mock-provider';
import { testCa, type TestCa } from '../fixtures/tls';

const dir = mkdtempSync(join(tmpdir(), 'sluice-mtls-'));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const file = (name: string) => join(dir, name);

/** A CA and a client certificate under it, the way a corporate PKI issues them (EKU clientAuth). */
function clientPki(ca: string, client: string, subject: string): void {
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2',
    '-subj', `/CN=${ca}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${client}.key`, '-out', `${client}.csr`, '-subj', subject);
  writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  ssl('x509', '-req', '-in', `${client}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${client}.pem`, '-days', '1', '-extfile', 'client.ext');
}

let proxyCa: TestCa;
let h: Harness;
const BODY = (text: string) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });

before(async () => {
  clientPki('corp-ca', 'bot', '/O=acme/OU=ci/CN=build-bot');
  clientPki('rogue-ca', 'mallory', '/O=acme/OU=ci/CN=build-bot');
  proxyCa = await testCa('Proxy Listener Issuer');
  const listener = proxyCa.issueFiles('127.0.0.1');
  h = await startHarness('policy: { mode: enforce, invalid_identity: refuse }\n', (c) => {
    c.tls.proxy_cert = listener.cert;
    c.tls.proxy_key = listener.key;
    c.tls.client_ca = [file('corp-ca.pem')];
  });
});
after(async () => {
  await h?.close();
  proxyCa?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => h.skipPending());

const viaProxy = (clientArgs: string[], text: string) =>
  curlThrough(null, [
    '--proxy', h.sluice.forwardUrl, '--noproxy', '', '--proxy-cacert', proxyCa.certPath, ...clientArgs,
    '--cacert', h.sluice.caCert, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '--data-binary', BODY(text),
  ]);

test('curl with a client certificate from tls.client_ca: the exchange carries its verified identity', async () => {
  assert.match(h.sluice.forwardUrl, /^https:\/\//);
  const r = await viaProxy(['--proxy-cert', file('bot.pem'), '--proxy-key', file('bot.key')], 'from ci');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.body).choices[0].message.content, mockReplyText('from ci'));
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'connect');
  assert.deepEqual(x.identity, { subject: 'build-bot', source: 'mtls', verified: true, tenant: 'acme', app: 'ci' });
  assert.equal(x.identityProblem, null);
});

test('the openai SDK through ProxyAgent with proxyTls presents the certificate too', async () => {
  const agent = new ProxyAgent({
    uri: h.sluice.forwardUrl,
    proxyTls: { ca: readFileSync(proxyCa.certPath, 'utf8'), cert: readFileSync(file('bot.pem')), key: readFileSync(file('bot.key')) },
    requestTls: { ca: readFileSync(h.sluice.caCert, 'utf8') },
  });
  try {
    const client = new OpenAI({ apiKey: 'sk-test', fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher: agent } as unknown as ClientOptions['fetchOptions'], maxRetries: 0 });
    const done = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'sdk with a cert' }] });
    assert.equal(done.choices[0]?.message.content, mockReplyText('sdk with a cert'));
    const x = await h.nextExchange();
    assert.equal(x.identity?.source, 'mtls');
    assert.equal(x.identity?.subject, 'build-bot');
  } finally {
    await agent.close();
  }
});

test('no certificate is anonymous; a certificate from another CA claiming the same name is refused by policy (401)', async () => {
  let r = await viaProxy([], 'no cert');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  let x = await h.nextExchange();
  assert.deepEqual(x.identity, { subject: 'anonymous', source: 'address', verified: false });

  const before = h.mock.requests.length;
  r = await viaProxy(['--proxy-cert', file('mallory.pem'), '--proxy-key', file('mallory.key')], 'forged');
  assert.equal(r.status, 401, r.body);
  assert.match(JSON.parse(r.body).error.message, /client certificate refused: .*policy\.invalid_identity is refuse/);
  x = await h.nextExchange();
  assert.notEqual(x.identity?.verified, true);
  assert.notEqual(x.identity?.subject, 'build-bot');
  assert.equal(h.mock.requests.length, before, 'nothing reached the provider');
});

test('tls.client_cert_required: a client without a certificate fails the handshake, which is recorded', async () => {
  const listener = proxyCa.issueFiles('127.0.0.1');
  const strict = await startHarness('', (c) => {
    c.tls.proxy_cert = listener.cert;
    c.tls.proxy_key = listener.key;
    c.tls.client_ca = [file('corp-ca.pem')];
    c.tls.client_cert_required = true;
  });
  try {
    const r = await curlThrough(null, ['--proxy', strict.sluice.forwardUrl, '--noproxy', '', '--proxy-cacert', proxyCa.certPath, '--cacert', strict.sluice.caCert, 'https://api.openai.com/v1/models']);
    assert.notEqual(r.code, 0, 'curl cannot get through');
    const x = await strict.nextExchange();
    assert.equal(x.outcome, 'client_tls_failed');
    assert.equal(x.frontDoor, 'forward');
    assert.equal(x.error?.code, 'SLUICE_CLIENT_TLS');
    const ok = await curlThrough(null, ['--proxy', strict.sluice.forwardUrl, '--noproxy', '', '--proxy-cacert', proxyCa.certPath, '--proxy-cert', file('bot.pem'), '--proxy-key', file('bot.key'),
      '--cacert', strict.sluice.caCert, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '--data-binary', BODY('strict')]);
    assert.equal(ok.status, 200, ok.stderr);
  } finally {
    await strict.close();
  }
});

test('client certificates without a TLS proxy listener are a config error that names the setting', async () => {
  await assert.rejects(startHarness('', (c) => (c.tls.client_ca = [file('corp-ca.pem')])), /tls\.client_ca needs tls\.proxy_cert/);
});
