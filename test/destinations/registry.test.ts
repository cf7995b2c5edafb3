import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load';
import { DestinationRegistry, jurisdictionOfRegion } from '../../src/destinations/registry';

const registry = new DestinationRegistry(
  parseConfig(`
upstreams:
  api.anthropic.com: http://127.0.0.1:7000
destinations:
  sanctioned: [openai, mistral]
  azure_regions: { contoso-eu: westeurope }
  add:
    - host: llm.corp.example
      provider: corp-llm
      format: openai
      region: eu-central-1
      prefix: corp
      origin: http://10.1.2.3:8000
`),
);

test('gateway prefixes route to provider hosts and strip the prefix', () => {
  const r = registry.route('/openai/v1/chat/completions')!;
  assert.equal(r.destination.host, 'api.openai.com');
  assert.equal(r.destination.origin, 'https://api.openai.com');
  assert.equal(r.path, '/v1/chat/completions');
  assert.equal(r.destination.format, 'openai');
  assert.equal(r.destination.sanctioned, true);

  const a = registry.route('/anthropic/v1/messages')!;
  assert.equal(a.destination.origin, 'http://127.0.0.1:7000', 'upstreams override the origin');
  assert.equal(a.destination.host, 'api.anthropic.com', 'but not the destination');
  assert.equal(a.destination.sanctioned, false);

  const g = registry.route('/gemini/v1beta/models/gemini-2.0-flash:generateContent')!;
  assert.equal(g.destination.host, 'generativelanguage.googleapis.com');
  assert.equal(g.path, '/v1beta/models/gemini-2.0-flash:generateContent');
});

test('bedrock and azure take their host label from the path', () => {
  const b = registry.route('/bedrock/eu-central-1/model/anthropic.claude-3/converse')!;
  assert.equal(b.destination.host, 'bedrock-runtime.eu-central-1.amazonaws.com');
  assert.equal(b.path, '/model/anthropic.claude-3/converse');
  assert.equal(b.destination.region, 'eu-central-1');
  assert.equal(b.destination.jurisdiction, 'EU');
  assert.equal(registry.route('/bedrock/us-east-1/model/x/invoke')!.destination.jurisdiction, 'US');

  const z = registry.route('/azure/contoso-eu/openai/deployments/gpt4o/chat/completions')!;
  assert.equal(z.destination.host, 'contoso-eu.openai.azure.com');
  assert.equal(z.destination.jurisdiction, 'EU');
  assert.equal(z.path, '/openai/deployments/gpt4o/chat/completions');
  assert.equal(registry.route('/azure/other/openai/x')!.destination.jurisdiction, 'unknown');

  assert.equal(registry.route('/bedrock/Bad_Label!/model/x'), undefined);
});

test('unknown prefixes do not route; the prefix list names them all', () => {
  assert.equal(registry.route('/nope/v1/chat'), undefined);
  assert.equal(registry.route('/'), undefined);
  const prefixes = registry.prefixes();
  for (const p of ['/openai/', '/anthropic/', '/gemini/', '/bedrock/{region}/', '/azure/{resource}/', '/mistral/', '/groq/', '/corp/']) {
    assert.ok(prefixes.includes(p), `${p} listed`);
  }
});

test('hosts resolve to destinations, long-tail unsanctioned ones are shadow AI', () => {
  const d = registry.byHost('api.deepseek.com');
  assert.equal(d.provider, 'deepseek');
  assert.equal(d.jurisdiction, 'CN');
  assert.equal(d.shadow, true);
  assert.equal(registry.byHost('api.mistral.ai').shadow, false, 'sanctioned');
  assert.equal(registry.byHost('api.openai.com').shadow, false, 'major providers are not shadow');
  assert.equal(registry.byHost('API.OpenAI.com:443').host, 'api.openai.com');
  const v = registry.byHost('europe-west4-aiplatform.googleapis.com');
  assert.equal(v.provider, 'vertex-ai');
  assert.equal(v.jurisdiction, 'EU');
  const u = registry.byHost('example.org:8080');
  assert.equal(u.provider, 'unknown');
  assert.equal(u.origin, 'https://example.org:8080');
  const corp = registry.byHost('llm.corp.example');
  assert.equal(corp.provider, 'corp-llm');
  assert.equal(corp.origin, 'http://10.1.2.3:8000');
  assert.equal(corp.jurisdiction, 'EU');
});

test('regions map to jurisdictions by most specific prefix', () => {
  assert.equal(jurisdictionOfRegion('eu-west-2'), 'UK');
  assert.equal(jurisdictionOfRegion('eu-west-1'), 'EU');
  assert.equal(jurisdictionOfRegion('ap-northeast-1'), 'JP');
  assert.equal(jurisdictionOfRegion('westeurope'), 'EU');
  assert.equal(jurisdictionOfRegion('mars-1'), 'unknown');
  assert.equal(jurisdictionOfRegion(undefined), 'unknown');
});
