import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile, parseConfig } from '../../src/config/load';
import { defaultConfig } from '../../src/config/schema';
import { SluiceError } from '../../src/errors';

test('an empty file gives the embedded defaults', () => {
  assert.deepEqual(parseConfig(''), defaultConfig());
  assert.deepEqual(parseConfig('# only a comment\n'), defaultConfig());
});

test('values merge over defaults and convert to their types', () => {
  const c = parseConfig(`
listen:
  proxy: 0.0.0.0:18080
  admin: "[::1]:19090"
upstreams:
  api.openai.com: http://127.0.0.1:9999/
destinations:
  sanctioned: [openai]
  azure_regions: { contoso: westeurope }
  add:
    - host: llm.corp.example
      provider: internal
      format: openai
      prefix: internal
limits:
  max_request_bytes: 2048
`);
  assert.deepEqual(c.listen.proxy, { host: '0.0.0.0', port: 18080 });
  assert.deepEqual(c.listen.admin, { host: '::1', port: 19090 });
  assert.deepEqual(c.listen.forward, defaultConfig().listen.forward);
  assert.equal(c.upstreams['api.openai.com'], 'http://127.0.0.1:9999');
  assert.deepEqual(c.destinations.sanctioned, ['openai']);
  assert.equal(c.destinations.add[0]?.prefix, 'internal');
  assert.equal(c.limits.max_request_bytes, 2048);
  assert.equal(c.limits.upstream_timeout_ms, defaultConfig().limits.upstream_timeout_ms);
});

test('every problem is reported with its key and line', () => {
  const text = [
    'listen:', //                      1
    '  proxy: nowhere', //             2
    '  admin: 127.0.0.1:99999', //     3
    'limits:', //                      4
    '  max_request_bytes: -5', //      5
    '  max_requset_bytes: 5', //       6
    'upstreams:', //                   7
    '  api.openai.com: ftp://x', //    8
    'destinations:', //                9
    '  add:', //                       10
    '    - host: a.example', //        11
    '      format: cobol', //          12
  ].join('\n');
  let err: unknown;
  try {
    parseConfig(text, 'sluice.yaml');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SluiceError);
  assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
  const problems = (err as SluiceError & { problems: Array<{ key: string; line: number }> }).problems.map((p) => `${p.line} ${p.key}`);
  assert.deepEqual(problems.sort(), [
    '11 destinations.add[0].provider',
    '12 destinations.add[0].format',
    '2 listen.proxy',
    '3 listen.admin',
    '5 limits.max_request_bytes',
    '6 limits.max_requset_bytes',
    '8 upstreams.api.openai.com',
  ].sort());
  assert.match(err.message, /sluice\.yaml:6: limits\.max_requset_bytes: unknown key/);
  assert.match(err.message, /sluice\.yaml:3: listen\.admin: port 99999 is out of range/);
});

test('YAML syntax errors carry a line', () => {
  assert.throws(() => parseConfig('listen:\n  proxy: [unclosed\n', 'c.yaml'), (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.match(e.message, /c\.yaml:\d+: \(yaml\)/);
    return true;
  });
});

test('a mapping where a value belongs, and a missing file, are clear errors', async () => {
  assert.throws(() => parseConfig('data_dir:\n  nested: 1\n'), /data_dir: expected a single value/);
  await assert.rejects(loadConfigFile('/nonexistent/sluice.yaml'), /cannot read config file \/nonexistent\/sluice\.yaml/);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
  const file = join(dir, 'ok.yaml');
  await writeFile(file, 'data_dir: /var/lib/sluice\n');
  assert.equal((await loadConfigFile(file)).data_dir, '/var/lib/sluice');
});
