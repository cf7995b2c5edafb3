// createSinks refuses what the schema cannot see (schemes, options of the other type, unreadable files), naming
// the key, and builds working sinks from good specs.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createSinks } from '../../../src/audit/sinks/index';
import type { AuditSinkSpec } from '../../../src/config/schema';
import { SluiceError } from '../../../src/errors';

const dir = mkdtempSync(join(tmpdir(), 'sluice-sinks-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const token = join(dir, 'token');
writeFileSync(token, 'secret\n');
writeFileSync(join(dir, 'empty'), '\n');

const ok: AuditSinkSpec = { name: 'ok', type: 'syslog', url: 'tcp://127.0.0.1:514' };

function refused(spec: Partial<AuditSinkSpec>, key: string, why: RegExp): void {
  assert.throws(
    () => createSinks([ok, { name: 'bad', type: 'syslog', url: 'tcp://h:514', ...spec } as AuditSinkSpec], dir, join(dir, 'audit')),
    (err: unknown) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
      assert.ok(err.message.startsWith(`audit.sinks[1].${key}: `), err.message);
      assert.match(err.message, why);
      return true;
    },
  );
}

test('createSinks names the bad key of the bad sink', () => {
  refused({ url: 'udp://h:514' }, 'url', /tcp:\/\/host:port or tls:\/\/host:port/);
  refused({ url: 'tcp://h' }, 'url', /name the host and the port/);
  refused({ url: 'tcp://h:514/x' }, 'url', /no path/);
  refused({ url: 'not a url' }, 'url', /not a URL/);
  refused({ type: 'http', url: 'ftp://h/x', format: 'hec', token_file: token }, 'url', /http:\/\/ or https:\/\//);
  refused({ type: 'http', url: 'http://h/x' }, 'format', /required/);
  refused({ type: 'http', url: 'http://h/x', format: 'hec' }, 'token_file', /required for format hec/);
  refused({ type: 'http', url: 'http://h/x', format: 'ndjson', token_file: join(dir, 'missing') }, 'token_file', /cannot read .*missing/);
  refused({ type: 'http', url: 'http://h/x', format: 'ndjson', token_file: join(dir, 'empty') }, 'token_file', /is empty/);
  refused({ type: 'http', url: 'http://h/x', format: 'ndjson', ca: token }, 'ca', /https:\/\/ only/);
  refused({ format: 'hec' }, 'format', /http sinks only/);
  refused({ ca: token }, 'ca', /tls:\/\/ only/);
  refused({ name: 'ok' }, 'name', /names another sink/);
});

test('createSinks builds one idle sink per spec', async () => {
  const sinks = createSinks(
    [ok, { name: 'splunk', type: 'http', url: 'https://splunk.example:8088/services/collector/event', format: 'hec', token_file: token }],
    dir,
    join(dir, 'audit'),
  );
  assert.deepEqual(
    sinks.map((s) => [s.stats().name, s.stats().type, s.stats().delivered, s.stats().connected]),
    [
      ['ok', 'syslog', 0, false],
      ['splunk', 'http', 0, false],
    ],
  );
  for (const s of sinks) await s.close();
});
