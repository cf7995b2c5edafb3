// Which CONNECT targets are intercepted, tunnelled or denied: known AI hosts first, then the operator's lists.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load';
import { InterceptionPolicy } from '../../src/destinations/interception';
import { DestinationRegistry } from '../../src/destinations/registry';

function policy(yaml = ''): InterceptionPolicy {
  const config = parseConfig(yaml);
  return new InterceptionPolicy(config, new DestinationRegistry(config));
}

test('every known AI host is intercepted, sanctioned or not; other hosts are tunnelled', () => {
  const p = policy('destinations: { sanctioned: [openai] }');
  assert.equal(p.decide('api.openai.com', 443).action, 'intercept');
  assert.equal(p.decide('api.deepseek.com', 443).action, 'intercept', 'shadow AI is intercepted for visibility');
  assert.equal(p.decide('bedrock-runtime.eu-west-1.amazonaws.com', 443).action, 'intercept');
  const other = p.decide('github.com', 443);
  assert.equal(other.action, 'tunnel');
  assert.equal(other.destination.provider, 'unknown');
});

test('deny beats tunnel beats intercept; patterns are exact or *.suffix', () => {
  const p = policy(
    'interception:\n' +
      '  intercept: ["llm.corp.example"]\n' +
      '  tunnel: ["api.openai.com", "*.corp.example"]\n' +
      '  deny: ["*.deepseek.com"]\n',
  );
  assert.deepEqual(
    ['llm.corp.example', 'api.openai.com', 'api.deepseek.com', 'git.corp.example'].map((h) => p.decide(h, 443).action),
    ['tunnel', 'tunnel', 'deny', 'tunnel'],
  );
  assert.match(p.decide('api.deepseek.com', 443).reason, /interception\.deny "\*\.deepseek\.com"/);
  const q = policy('interception: { intercept: ["llm.corp.example"] }');
  assert.equal(q.decide('llm.corp.example', 443).action, 'intercept');
  assert.equal(q.decide('corp.example', 443).action, 'tunnel', '*.suffix does not match the bare suffix');
});

test('ports, IP literals and unknown hosts follow config', () => {
  const p = policy();
  assert.equal(p.decide('api.openai.com', 25).action, 'deny');
  assert.equal(p.decide('10.0.0.1', 443).action, 'deny');
  assert.equal(p.decide('::1', 443).action, 'deny');
  const q = policy('interception: { ports: [443, 8443], allow_ip_literals: true, unknown: deny }');
  assert.equal(q.decide('10.0.0.1', 443).action, 'deny', 'an IP literal is an unknown host');
  assert.match(q.decide('10.0.0.1', 443).reason, /interception\.unknown is deny/);
  assert.equal(q.decide('api.openai.com', 8443).action, 'intercept');
  assert.equal(q.decide('api.openai.com', 8443).destination.origin, 'https://api.openai.com:8443');
});

test('config errors name the key', () => {
  assert.throws(() => parseConfig('interception: { ports: [0] }'), /interception\.ports\[0\]: expected an integer from 1 to 65535/);
  assert.throws(() => parseConfig('interception: { unknown: block }'), /interception\.unknown: expected one of tunnel, deny/);
  assert.throws(() => parseConfig('interception: { proxy_auth: { users: { bob: hunter2 } } }'), /proxy_auth\.users\.bob: expected the hex SHA-256/);
  assert.throws(() => parseConfig('interception: { deny: ["bad host"] }'), /interception\.deny\[0\]/);
});
