// The decision table: destination, findings and inspection failures → one decision with its rule, reason and
// policy version; monitor mode never blocks; content rules apply in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load';
import { DestinationRegistry } from '../../src/destinations/registry';
import { Exchange, type ExchangeFinding } from '../../src/pipeline/exchange';
import { Policy } from '../../src/policy/policy';

const CONFIG_BASE = 'destinations: { sanctioned: [openai] }\n';

function setup(policyYaml: string) {
  const config = parseConfig(CONFIG_BASE + policyYaml);
  const registry = new DestinationRegistry(config);
  const policy = new Policy(config.policy);
  const exchange = (host: string, findings: ExchangeFinding[] | null = [], failure: Exchange['inspectFailure'] = null) => {
    const x = new Exchange('gateway', registry.byHost(host), { method: 'POST', path: '/v1/chat/completions', query: '', contentType: 'application/json' }, '127.0.0.1', [], 0);
    x.requestFindings = findings;
    x.inspectFailure = failure;
    return x;
  };
  return { policy, exchange };
}

const finding = (rule: string, category: ExchangeFinding['category'], severity: ExchangeFinding['severity'], confidence = 0.9): ExchangeFinding => ({
  rule,
  category,
  severity,
  confidence,
  role: 'user',
  path: 'messages[0].content',
  start: 0,
  end: 20,
  masked: 'AKIA************MPLE',
});

const ENFORCE = `policy:
  mode: enforce
  unsanctioned: block
  content:
    - { id: allow-test-emails, action: allow, rules: [email-address] }
    - { id: no-secrets, action: block, categories: [credential], min_severity: high }
    - { id: watch-pii, action: alert, categories: [pii], min_confidence: 0.5 }
`;

test('decision table under enforce: first matching content rule per finding, strongest across findings', () => {
  const { policy, exchange } = setup(ENFORCE);
  const cases: Array<[string, ExchangeFinding[], string, string | undefined]> = [
    ['nothing found', [], 'allow', undefined],
    ['a high credential', [finding('aws-access-key-id', 'credential', 'high')], 'block', 'content:no-secrets'],
    ['a medium credential is under min_severity', [finding('generic-password', 'credential', 'medium')], 'allow', undefined],
    ['pii', [finding('us-ssn', 'pii', 'high')], 'alert', 'content:watch-pii'],
    ['pii under min_confidence', [finding('us-ssn', 'pii', 'high', 0.3)], 'allow', undefined],
    ['an allow rule carves out an exception', [finding('email-address', 'pii', 'medium')], 'allow', undefined],
    ['block wins over alert', [finding('us-ssn', 'pii', 'high'), finding('aws-access-key-id', 'credential', 'critical')], 'block', 'content:no-secrets'],
  ];
  for (const [name, findings, action, rule] of cases) {
    const d = policy.decide(exchange('api.openai.com', findings));
    assert.equal(d.action, action, name);
    assert.equal(d.rule, rule, name);
    assert.equal(d.policyVersion, policy.version, name);
    assert.equal(d.by, 'policy');
  }
  const blocked = policy.decide(exchange('api.openai.com', [finding('aws-access-key-id', 'credential', 'high')]));
  assert.match(blocked.reason ?? '', /content rule "no-secrets": credential finding aws-access-key-id \(high, confidence 0\.90\) "AKIA\*+MPLE" in user messages\[0\]\.content/);
});

test('destinations: an unsanctioned AI provider follows policy.unsanctioned; unknown hosts and sanctioned ones do not', () => {
  const { policy, exchange } = setup(ENFORCE);
  const d = policy.decide(exchange('api.deepseek.com'));
  assert.equal(d.action, 'block');
  assert.equal(d.rule, 'unsanctioned');
  assert.match(d.reason ?? '', /deepseek \(api\.deepseek\.com\) is not a sanctioned provider/);
  assert.equal(policy.decide(exchange('api.openai.com')).action, 'allow');
  assert.equal(policy.decide(exchange('intranet.example.com')).action, 'allow');
});

test('monitor mode records what it would block as an alert', () => {
  const { policy, exchange } = setup(ENFORCE.replace('mode: enforce', 'mode: monitor'));
  const d = policy.decide(exchange('api.openai.com', [finding('aws-access-key-id', 'credential', 'high')]));
  assert.equal(d.action, 'alert');
  assert.equal(d.rule, 'content:no-secrets');
  assert.match(d.reason ?? '', /^would block \(policy\.mode is monitor\): content rule "no-secrets"/);
});

test('inspection failures follow on_failure per kind: open forwards with an alert, closed blocks', () => {
  const { policy, exchange } = setup(ENFORCE + '  on_failure: { inspect_timeout: closed, unparseable_body: open }\n');
  const timeout = policy.decide(exchange('api.openai.com', null, { kind: 'inspect_timeout', code: 'SLUICE_INSPECT_TIMEOUT', message: 'took 1000 ms' }));
  assert.equal(timeout.action, 'block');
  assert.equal(timeout.rule, 'on_failure.inspect_timeout');
  assert.match(timeout.reason ?? '', /could not be inspected \(took 1000 ms\)/);
  const unparsed = policy.decide(exchange('api.openai.com', null, { kind: 'unparseable_body', code: 'SLUICE_BAD_REQUEST', message: 'invalid JSON' }));
  assert.equal(unparsed.action, 'alert');
  assert.match(unparsed.reason ?? '', /^forwarded uninspected: invalid JSON/);
});

test('the policy version is a hash of the policy: stable across key order, different for a different policy', () => {
  const a = setup(ENFORCE).policy.version;
  const reordered = setup(`policy:
  content:
    - { action: allow, id: allow-test-emails, rules: [email-address] }
    - { categories: [credential], id: no-secrets, action: block, min_severity: high }
    - { id: watch-pii, min_confidence: 0.5, action: alert, categories: [pii] }
  unsanctioned: block
  mode: enforce
`).policy.version;
  assert.equal(a, reordered);
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.notEqual(setup(ENFORCE.replace('min_confidence: 0.5', 'min_confidence: 0.6')).policy.version, a);
});

test('policy config errors name the key', () => {
  assert.throws(() => parseConfig('policy: { mode: strict }'), /policy\.mode: expected one of monitor, enforce/);
  assert.throws(() => parseConfig('policy: { content: [{ id: x, action: quarantine }] }'), /policy\.content\[0\]\.action: expected one of allow, alert, redact, block/);
  assert.throws(() => parseConfig('policy: { content: [{ id: x, action: block, categories: [secrets] }] }'), /policy\.content\[0\]\.categories\[0\]: expected one of pii, phi/);
  assert.throws(() => parseConfig('policy: { content: [{ action: block }] }'), /policy\.content\[0\]\.id: is required/);
  assert.throws(() => parseConfig('policy: { on_failure: { inspect_timeout: maybe } }'), /policy\.on_failure\.inspect_timeout: expected one of open, closed/);
});

test('routes: tools offered outside the allow-list are refused before forwarding; a model calling one is judged after', () => {
  const config = parseConfig(`${CONFIG_BASE}routes:\n  - { name: bot, match: { providers: [openai] }, allow: { tools: [lookup_order] } }\npolicy: { mode: enforce }\n`);
  const registry = new DestinationRegistry(config);
  const policy = new Policy(config.policy, config.routes);
  const x = new Exchange('gateway', registry.byHost('api.openai.com'), { method: 'POST', path: '/v1/chat/completions', query: '', contentType: '' }, '', [], 0);
  x.request = { parsed: true, operation: 'chat.completions', stream: false, segments: [], tools: ['lookup_order', 'run_shell'], model: 'gpt-4o' };
  x.route = policy.route(x);
  assert.equal(x.route, 'bot');
  const d = policy.decide(x);
  assert.equal(d.action, 'block');
  assert.match(d.reason ?? '', /route "bot" may not offer the model tool run_shell/);

  x.response = { parsed: true, errors: [], text: [], toolCalls: [{ name: 'run_shell', arguments: '{}' }], truncated: false };
  const r = policy.decideResponse(x);
  assert.equal(r?.action, 'alert');
  assert.match(r?.reason ?? '', /^would block, but the response had already reached the client: the model called tool run_shell/);
  x.response.toolCalls = [{ name: 'lookup_order', arguments: '{}' }];
  assert.equal(policy.decideResponse(x), null);
});
