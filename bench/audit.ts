// Audit log benchmark: records/s through the real writer (hash-chained, batched, Merkle root, signed, fsync=batch)
// on one core, then `verify` over the log it wrote. Prints one JSON line; the baseline is bare leaf hashing, same run.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { readPublicKeyDir } from '../src/audit/keys';
import { AuditLog } from '../src/audit/log';
import { leafHash } from '../src/audit/merkle';
import { verifyLog } from '../src/audit/verify';
import { defaultConfig } from '../src/config/schema';

const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 300_000);
/** Records appended per turn of the event loop, as a busy proxy would between I/O callbacks. */
const PER_TURN = 256;

/** An exchange record of the size and shape the pipeline writes: ~1 KB, with findings but no content. */
function exchangeRecord(i: number): string {
  return JSON.stringify({
    type: 'exchange',
    id: `ex_${i.toString(36).padStart(10, '0')}`,
    time: '2026-11-26T04:28:00.123Z',
    destination: { host: 'api.openai.com', provider: 'openai', sanctioned: true, region: 'us', jurisdiction: 'US', front_door: 'gateway' },
    identity: { subject: 'svc-support-bot', tenant: 'acme', app: 'helpdesk', groups: ['support', 'eu-staff'], source: 'jwt', key_fingerprint: null },
    route: { name: 'support-default', path: '/openai/v1/chat/completions' },
    request: {
      model: 'gpt-4o-mini',
      bytes: 2817,
      messages: 4,
      stream: true,
      tools: ['lookup_order', 'create_ticket'],
      findings: [
        { rule: 'email-address', category: 'pii', severity: 'medium', confidence: 0.9, count: 2, masked: 'a***@e******.com' },
        { rule: 'aws-access-key-id', category: 'credential', severity: 'high', confidence: 0.99, count: 1, masked: 'AKIA************WB' },
      ],
    },
    response: {
      status: 200,
      bytes: 5120,
      finish_reason: 'tool_calls',
      usage: { prompt_tokens: 812, completion_tokens: 233, total_tokens: 1045 },
      tool_calls: [{ name: 'lookup_order', arguments_bytes: 48 }],
      findings: [],
    },
    latency_ms: { total: 1834.2, upstream_first_byte: 412.7, inspection: 0.41 },
    decision: { action: 'redact', rules: ['no-secrets', 'watch-pii'], mode: 'enforce', reason: 'credential redacted before forwarding' },
  });
}

function round(n: number): number {
  return Math.round(n);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-audit-'));
  try {
    const records = Array.from({ length: 1024 }, (_, i) => exchangeRecord(i));
    const recordBytes = Buffer.byteLength(records[0]!);

    // Baseline: the leaf hash alone, the floor of any hash-chained log over these records.
    let t0 = performance.now();
    for (let i = 0; i < RECORDS; i++) leafHash(records[i & 1023]!);
    const hashOnlyS = (performance.now() - t0) / 1000;

    const cfg = { ...defaultConfig().audit, fsync: 'batch' as const };
    const log = await AuditLog.open(cfg, dir, { onError: (err) => process.stderr.write(`audit error: ${err.message}\n`) });
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    for (let i = 0; i < RECORDS; ) {
      for (const end = Math.min(RECORDS, i + PER_TURN); i < end; i++) log.append(records[i & 1023]!);
      await yieldToLoop();
    }
    await log.flush();
    const appendS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const stats = log.stats();
    await log.close();

    const auditDir = join(dir, 'audit');
    const publicKeys = await readPublicKeyDir(join(auditDir, 'keys'));
    t0 = performance.now();
    const result = await verifyLog(auditDir, { publicKeys });
    const verifyS = (performance.now() - t0) / 1000;

    process.stdout.write(
      `${JSON.stringify({
        case: 'audit',
        records: RECORDS,
        record_bytes: recordBytes,
        fsync: cfg.fsync,
        batch_records: cfg.batch_records,
        append_per_s: round(RECORDS / appendS),
        append_cpu_s: Math.round((cpu.user + cpu.system) / 1e4) / 100,
        hash_only_per_s: round(RECORDS / hashOnlyS),
        verify_per_s: round(result.records / verifyS),
        verify_ok: result.ok && result.records === RECORDS,
        batches: stats.batches,
        segments: stats.segments,
        fsyncs: stats.fsyncs,
        mb_written: Math.round(stats.bytes / 1e5) / 10,
        cpu: cpus()[0]?.model ?? 'unknown',
        node: process.version,
      })}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/audit failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
