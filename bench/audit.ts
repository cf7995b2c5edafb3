// Audit log benchmark: the per-exchange record build, then records/s through the real writer (hash-chained, batched,
// Merkle root, signed, fsync=batch) and what it costs the event loop per record, then `verify` over the log it wrote.
// Prints one JSON line; the baseline is bare leaf hashing, same run.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { readPublicKeyDir } from '../src/audit/keys';
import { AuditLog } from '../src/audit/log';
import { exchangeRecord } from '../src/audit/record';
import { leafHash } from '../src/audit/merkle';
import { verifyLog } from '../src/audit/verify';
import { mainThreadCpuSeconds } from './cpu';
import { defaultConfig } from '../src/config/schema';
import { DestinationRegistry } from '../src/destinations/registry';
import { Exchange } from '../src/pipeline/exchange';

const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 300_000);
/** Records appended per turn of the event loop, as a busy proxy would between I/O callbacks. */
const PER_TURN = 256;
/** One exchange in this many is the heavy kind: findings, a streamed tool call, a redaction. */
const RICH_EVERY = 8;

/**
 * An exchange as the pipeline leaves it at completion: a chat completion with identity from a token. One in
 * RICH_EVERY also streams, calls a tool and carries two request findings (most traffic is clean). Its record is
 * built by the real `exchangeRecord` (the bench counts that cost too).
 */
function exchange(registry: DestinationRegistry, i: number): Exchange {
  const rich = i % RICH_EVERY === 0;
  const x = new Exchange('gateway', registry.byHost('api.openai.com'), { method: 'POST', path: '/v1/chat/completions', query: '', contentType: 'application/json' }, '10.1.2.3', [], performance.now() - 1834);
  x.identity = { subject: `svc-support-bot-${i % 50}`, source: 'jwt', verified: true, tenant: 'acme', app: 'helpdesk', groups: ['support', 'eu-staff'], jurisdiction: 'EU' };
  x.route = 'support-bot';
  x.requestBytes = 2817;
  x.request = {
    parsed: true,
    model: 'gpt-4o-mini',
    operation: 'chat.completions',
    stream: rich,
    segments: [
      { role: 'system', path: 'messages[0].content', text: 'You are the helpdesk assistant.' },
      { role: 'user', path: 'messages[1].content', text: 'Order 1234 for jane.doe@acme-corp.com, key AKIAQ3EGUS2Z4KXGJHWB' },
    ],
    tools: ['lookup_order', 'create_ticket'],
  };
  const finding = (rule: string, category: 'pii' | 'credential', severity: 'medium' | 'high', masked: string) => ({
    rule, category, severity, confidence: 0.95, role: 'user', path: 'messages[1].content', start: 15, end: 37, masked, digest: 'f'.repeat(64),
  });
  x.requestFindings = rich ? [finding('email', 'pii', 'medium', 'jane**************.com'), finding('aws-access-key', 'credential', 'high', 'AKIA************JHWB')] : [];
  x.status = 200;
  x.responseContentType = rich ? 'text/event-stream' : 'application/json';
  x.responseBytes = 5120;
  x.response = {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', path: 'choices[0].message.content', text: 'Looking that up.' }],
    toolCalls: rich ? [{ id: 'call_1', name: 'lookup_order', arguments: '{"order":"1234"}' }] : [],
    usage: { inputTokens: 812, outputTokens: 233, totalTokens: 1045 },
    finishReason: rich ? 'tool_calls' : 'stop',
    truncated: false,
  };
  x.responseFindings = [];
  x.decision = rich
    ? { action: 'redact', rule: 'content:mask-pii', reason: 'content rule "mask-pii": pii finding email (1 value masked before forwarding)', by: 'policy', policyVersion: '3f2a9c0d1e4b5a67' }
    : { action: 'allow', by: 'policy', policyVersion: '3f2a9c0d1e4b5a67' };
  x.outcome = 'completed';
  x.inspectMs = 0.41;
  x.tUpstreamStart = x.t0 + 2;
  x.tUpstreamHead = x.t0 + 414;
  x.tEnd = x.t0 + 1834;
  x.ownMs = 0.6;
  return x;
}

function round(n: number): number {
  return Math.round(n);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-audit-'));
  try {
    const registry = new DestinationRegistry(defaultConfig());
    const exchanges = Array.from({ length: 1024 }, (_, i) => exchange(registry, i));
    const recordOpts = { capture: false, digestKey: randomBytes(32), homeJurisdiction: 'EU' };
    // What the audit stage does per exchange before append: build and serialize the record.
    let t0 = performance.now();
    const builds = Math.min(RECORDS, 100_000);
    for (let i = 0; i < builds; i++) exchangeRecord(exchanges[i & 1023]!, recordOpts);
    const buildUs = ((performance.now() - t0) * 1000) / builds;
    const records = exchanges.map((x) => exchangeRecord(x, recordOpts));
    const recordBytes = Math.round(records.reduce((n, r) => n + Buffer.byteLength(r), 0) / records.length);

    // Baseline: the leaf hash alone, the floor of any hash-chained log over these records.
    t0 = performance.now();
    for (let i = 0; i < RECORDS; i++) leafHash(records[i & 1023]!);
    const hashOnlyS = (performance.now() - t0) / 1000;

    const cfg = { ...defaultConfig().audit, fsync: 'batch' as const };
    const log = await AuditLog.open(cfg, dir, { onError: (err) => process.stderr.write(`audit error: ${err.message}\n`) });
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpuSeconds();
    t0 = performance.now();
    for (let i = 0; i < RECORDS; ) {
      for (const end = Math.min(RECORDS, i + PER_TURN); i < end; i++) log.append(records[i & 1023]!);
      await yieldToLoop();
    }
    await log.flush();
    const appendS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const main1 = mainThreadCpuSeconds();
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
        record_bytes_mean: recordBytes,
        rich_every: RICH_EVERY,
        fsync: cfg.fsync,
        batch_records: cfg.batch_records,
        record_build_us: Math.round(buildUs * 100) / 100,
        append_per_s: round(RECORDS / appendS),
        append_cpu_s: Math.round((cpu.user + cpu.system) / 1e4) / 100,
        // The writer's share of the event loop: append itself and the loop's work on each batch, µs per record.
        append_main_us: main0 === null || main1 === null ? null : Math.round(((main1 - main0) * 1e8) / RECORDS) / 100,
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
