// Rotation under load, then kill -9 of the running `sluice start`, then a restart: what was sealed before the crash is intact,
// the torn tail is set aside and sealed, and `sluice verify` passes on the log with only the public key.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listSegments, readSegmentLines, RECORD_PREFIX } from '../../src/audit/segments';
import { runSluice, SLUICE_BIN } from '../fixtures/cli';
import { startMockProvider, type MockProvider } from '../fixtures/mock-provider';

let mock: MockProvider;
let dir: string;
const children = new Set<ChildProcess>();

before(async () => {
  mock = await startMockProvider();
  dir = mkdtempSync(join(tmpdir(), 'sluice-crash-'));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await mock?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `sluice start` and resolves with its gateway URL once it logs that it started. */
function start(config: string): Promise<{ child: ChildProcess; gateway: string; stderr: () => string }> {
  const child = spawn(process.execPath, [SLUICE_BIN, 'start', '--config', config], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not start:\n${err}`)), 60_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /"msg":"sluice started".*?"gateway":"([^"]+)"/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, gateway: m[1]!, stderr: () => err });
      }
    });
    child.on('exit', (code) => reject(new Error(`sluice exited ${code}:\n${err}`)));
  });
}

async function recordIds(auditDir: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const s of await listSegments(auditDir)) {
    for (const l of (await readSegmentLines(join(auditDir, s.file))).lines) {
      if (l.text.startsWith(RECORD_PREFIX)) ids.add((JSON.parse(l.text) as { id: string }).id);
    }
  }
  return ids;
}

test('segments rotate under load; kill -9, restart: records sealed before the crash are intact and the log verifies', async () => {
  const config = join(dir, 'sluice.yaml');
  writeFileSync(
    config,
    `listen: {proxy: 127.0.0.1:0, forward: 127.0.0.1:0, admin: 127.0.0.1:0}\n` +
      `data_dir: ${join(dir, 'data')}\n` +
      `upstreams:\n  api.openai.com: ${mock.url}\n` +
      `detect: { enabled: false }\n` +
      `audit: { batch_records: 64, batch_ms: 20, fsync: batch, segment_max_bytes: 65536 }\n`,
  );
  const auditDir = join(dir, 'data', 'audit');
  const first = await start(config);
  const answered: Array<{ id: string; at: number }> = [];
  let stop = false;
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'crash test' }] });
  const workers = Array.from({ length: 8 }, async () => {
    while (!stop) {
      try {
        const res = await fetch(`${first.gateway}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        if (res.status === 200) answered.push({ id: res.headers.get('x-sluice-exchange-id')!, at: Date.now() });
      } catch {
        // The process is gone: the loop ends with `stop`.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  });
  await new Promise((r) => setTimeout(r, 2500));
  const killedAt = Date.now();
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  stop = true;
  await Promise.all(workers);
  assert.ok(answered.length > 100, `load ran (${answered.length} answers)`);

  // Restart: recovery sets a torn line aside and seals what was written but not yet sealed.
  const second = await start(config);
  second.child.kill('SIGTERM');
  assert.equal(await new Promise((r) => second.child.once('exit', r)), 0, second.stderr());

  const verify = await runSluice(['verify', auditDir], { cwd: dir });
  assert.equal(verify.code, 0, `verify:\n${verify.stdout}\n${verify.stderr}`);
  assert.ok((await listSegments(auditDir)).length >= 5, 'the load rotated through several 64 KiB segments');
  const ids = await recordIds(auditDir);
  // Batches close every 20 ms: an exchange answered well before the kill had its record sealed on disk.
  const settled = answered.filter((a) => a.at < killedAt - 1000);
  assert.ok(settled.length > 50);
  const missing = settled.filter((a) => !ids.has(a.id));
  assert.deepEqual(missing, [], 'every exchange answered a second before the crash has its record');
});
