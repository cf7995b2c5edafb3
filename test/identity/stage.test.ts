// Identity through the gateway with a real SDK: signed tokens verified (issuer, audience, expiry, key), spoofs
// refused with 401 when policy says so, API keys mapped to services, routes and residency deciding on identity.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import OpenAI from 'openai';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';

const dir = mkdtempSync(join(tmpdir(), 'sluice-identity-'));
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rogue = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyFile = join(dir, 'idp.pem');
writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
// sha256("sk-billing-service-key")
const BILLING_FP = 'ffcad40f2547a352c39c4b574d84327ad5e1351457c6aadd70fb610bb71ccd50';

let h: Harness;

async function token(claims: JWTPayload, opts: { key?: typeof privateKey; exp?: string | number; aud?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://idp.example')
    .setAudience(opts.aud ?? 'sluice')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '5m')
    .sign(opts.key ?? privateKey);
}

before(async () => {
  h = await startHarness(
    `identity:
  jwt: { key_file: ${JSON.stringify(keyFile)}, issuer: "https://idp.example", audience: sluice }
  api_keys:
    - { fingerprint: ${BILLING_FP}, subject: billing-service, app: billing, jurisdiction: US }
routes:
  - { name: support, match: { groups: [support] }, allow: { providers: [anthropic] } }
  - { name: engineering, match: { tenants: [acme] } }
destinations: { sanctioned: [openai, anthropic] }
policy:
  mode: enforce
  invalid_identity: refuse
  residency:
    - { id: eu-pii, action: block, identity_jurisdictions: [EU], categories: [pii], allowed_jurisdictions: [EU] }
`,
    (c) => {
      c.detect.enabled = true;
      c.detect.threads = 0;
    },
  );
});
after(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => h.skipPending());

function client(headers: Record<string, string> = {}, apiKey = 'sk-user-key'): OpenAI {
  return new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey, maxRetries: 0, defaultHeaders: headers });
}
const ask = (c: OpenAI, content = 'hello') => c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });

test('a valid token gives a verified identity with its attributes and a route; the header never leaves', async () => {
  const t = await token({ sub: 'alice', tenant: 'acme', groups: ['eng'], jurisdiction: 'US' });
  await ask(client({ 'x-sluice-identity': `Bearer ${t}` }));
  const x = await h.nextExchange();
  assert.deepEqual(x.identity, { subject: 'alice', source: 'jwt', verified: true, tenant: 'acme', groups: ['eng'], jurisdiction: 'US' });
  assert.equal(x.route, 'engineering');
  assert.equal(x.decision.action, 'allow');
  assert.equal(h.mock.requests.at(-1)?.headers['x-sluice-identity'], undefined);
});

test('spoofs are refused with 401 and never become an identity: unsigned, forged, expired, wrong audience, HS256 confusion', async () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${b64({ alg: 'none' })}.${b64({ sub: 'mallory', iss: 'https://idp.example', aud: 'sluice', exp: Math.floor(Date.now() / 1000) + 60 })}.`;
  const cases: Array<[string, string]> = [
    ['a bare claim', 'mallory'],
    ['unsigned (alg none)', unsigned],
    ['forged (another key)', await token({ sub: 'mallory' }, { key: rogue.privateKey })],
    ['expired', await token({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 3600 })],
    ['wrong audience', await token({ sub: 'alice' }, { aud: 'someone-else' })],
    ['HS256 signed with the public key as secret', await new SignJWT({ sub: 'mallory' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://idp.example').setAudience('sluice').setExpirationTime('5m').sign(Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }) as string))],
  ];
  const before = h.mock.requests.length;
  for (const [name, t] of cases) {
    await assert.rejects(ask(client({ 'x-sluice-identity': t })), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 401, name);
      assert.equal(err.code, 'SLUICE_UNAUTHENTICATED', name);
      assert.match(err.message, /identity token refused|invalid|JWS|JWT/i, name);
      return true;
    });
    const x = await h.nextExchange();
    assert.notEqual(x.identity?.verified, true, name);
    assert.notEqual(x.identity?.subject, 'mallory', name);
    assert.ok(x.identityProblem, name);
  }
  assert.equal(h.mock.requests.length, before, 'nothing reached the provider');
});

test('no token: a mapped API key is a service identity (by fingerprint, never the key); otherwise anonymous', async () => {
  await ask(client({}, 'sk-billing-service-key'));
  let x = await h.nextExchange();
  assert.deepEqual(x.identity, { subject: 'billing-service', source: 'api_key', verified: true, app: 'billing', jurisdiction: 'US' });
  assert.equal(x.apiKeyFingerprint, BILLING_FP);
  await ask(client());
  x = await h.nextExchange();
  assert.deepEqual(x.identity, { subject: 'anonymous', source: 'address', verified: false });
  assert.equal(x.route, 'default');
});

test("Gemini's ?key= query parameter is fingerprinted like a header key", async () => {
  const r = await curlThrough(null, [
    '-H', 'content-type: application/json',
    '--data', JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    `${h.sluice.gatewayUrl}/gemini/v1beta/models/gemini-2.0-flash:generateContent?key=sk-billing-service-key`,
  ]);
  assert.equal(r.status, 200, r.body);
  const x = await h.nextExchange();
  assert.equal(x.apiKeyFingerprint, BILLING_FP);
  assert.equal(x.identity?.subject, 'billing-service');
});

test("a route's allow-list: the support group may only use Anthropic", async () => {
  const t = await token({ sub: 'sam', groups: ['support'] });
  await assert.rejects(ask(client({ 'x-sluice-identity': t })), (err: InstanceType<typeof OpenAI.APIError>) => {
    assert.equal(err.status, 403);
    assert.match(err.message, /route "support" may not use provider openai/);
    return true;
  });
  const x = await h.nextExchange();
  assert.equal(x.route, 'support');
  assert.equal(x.decision.rule, 'route:support');
});

test('residency: PII from an EU identity to a US provider is blocked; the same from a US identity is not', async () => {
  const eu = await token({ sub: 'eva', jurisdiction: 'EU' });
  await assert.rejects(ask(client({ 'x-sluice-identity': eu }), 'my ssn is 536-22-8461'), (err: InstanceType<typeof OpenAI.APIError>) => {
    assert.equal(err.status, 403);
    assert.match(err.message, /residency rule "eu-pii": pii data from a EU identity to openai in US/);
    return true;
  });
  assert.equal((await h.nextExchange()).decision.rule, 'residency:eu-pii');
  const us = await token({ sub: 'uma', jurisdiction: 'US' });
  await ask(client({ 'x-sluice-identity': us }), 'my ssn is 536-22-8461');
  assert.equal((await h.nextExchange()).decision.action, 'allow');
});

test('keys from a JWKS URL (RS256), fetched by kid from a loopback identity provider', async () => {
  const { createServer } = await import('node:http');
  const { exportJWK } = await import('jose');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let fetched = 0;
  const idp = createServer((_req, res) => {
    fetched++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  const port = (idp.address() as { port: number }).port;
  const j = await startHarness(`identity:\n  jwt: { jwks_url: "http://127.0.0.1:${port}/jwks.json", audience: sluice }\n`);
  try {
    const t = await new SignJWT({ sub: 'rita' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setAudience('sluice').setExpirationTime('5m').sign(rsa.privateKey);
    const c = new OpenAI({ baseURL: `${j.sluice.gatewayUrl}/openai/v1`, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'x-sluice-identity': t } });
    await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'again' }] });
    for (let i = 0; i < 2; i++) assert.deepEqual((await j.nextExchange()).identity, { subject: 'rita', source: 'jwt', verified: true });
    assert.equal(fetched, 1, 'the key set is fetched once and cached');
  } finally {
    await j.close();
    idp.close();
  }
});

test('identity.listeners: a token arriving through an untrusted front door is refused, even if it verifies', async () => {
  const u = await startHarness(
    `identity:\n  listeners: [gateway]\n  jwt: { key_file: ${JSON.stringify(keyFile)}, issuer: "https://idp.example", audience: sluice }\npolicy: { mode: enforce, invalid_identity: refuse }\n`,
  );
  try {
    const t = await token({ sub: 'alice' });
    const viaGateway = new OpenAI({ baseURL: `${u.sluice.gatewayUrl}/openai/v1`, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'x-sluice-identity': t } });
    await viaGateway.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((await u.nextExchange()).identity?.subject, 'alice');
    const r = await curlThrough(u.sluice.forwardUrl, [
      '--cacert', u.sluice.caCert, 'https://api.openai.com/v1/chat/completions',
      '-H', 'content-type: application/json', '-H', `x-sluice-identity: ${t}`,
      '--data-binary', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    ]);
    assert.equal(r.status, 401, r.stderr);
    assert.match(JSON.parse(r.body).error.message, /the connect listener is not in identity\.listeners/);
    const x = await u.nextExchange();
    assert.notEqual(x.identity?.verified, true);
  } finally {
    await u.close();
  }
});

test('HS256 with identity.jwt.secret_file, and EdDSA with an Ed25519 public key', async () => {
  const secretFile = join(dir, 'hs.secret');
  writeFileSync(secretFile, 'a-long-shared-secret-for-hs256-tokens-0123456789\n');
  const ed = generateKeyPairSync('ed25519');
  const edFile = join(dir, 'ed.pem');
  writeFileSync(edFile, ed.publicKey.export({ type: 'spki', format: 'pem' }));
  const cases: Array<[string, (claims: JWTPayload) => Promise<string>]> = [
    [`secret_file: ${JSON.stringify(secretFile)}`, (c) => new SignJWT(c).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(Buffer.from('a-long-shared-secret-for-hs256-tokens-0123456789'))],
    [`key_file: ${JSON.stringify(edFile)}`, (c) => new SignJWT(c).setProtectedHeader({ alg: 'EdDSA' }).setExpirationTime('5m').sign(ed.privateKey)],
  ];
  for (const [key, sign] of cases) {
    const k = await startHarness(`identity:\n  jwt: { ${key} }\n`);
    try {
      const c = new OpenAI({ baseURL: `${k.sluice.gatewayUrl}/openai/v1`, apiKey: 'k', maxRetries: 0, defaultHeaders: { 'x-sluice-identity': await sign({ sub: 'kim' }) } });
      await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      assert.deepEqual((await k.nextExchange()).identity, { subject: 'kim', source: 'jwt', verified: true }, key);
    } finally {
      await k.close();
    }
  }
});
