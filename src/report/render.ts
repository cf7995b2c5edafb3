// Renders a Report as Markdown (the document compliance hands over), a self-contained HTML page, or JSON.
// Both documents are built from one list of sections, so they say the same things in the same order.

import type { Report } from './compute';

export type ReportFormat = 'md' | 'json' | 'html';
export const REPORT_FORMATS: readonly ReportFormat[] = ['md', 'json', 'html'];

type Cell = string | number;

interface Table {
  head: string[];
  /** Columns holding numbers: right-aligned. */
  numeric: number[];
  rows: Cell[][];
}

interface Paragraph {
  text: string;
  /** Said prominently: bold in Markdown, a red banner in HTML. */
  alarm?: boolean;
}

interface Section {
  title: string;
  paragraphs: Paragraph[];
  tables: Table[];
  /** Said instead of an empty table. */
  none?: string;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const int = (x: number) => x.toLocaleString('en-US');
const latest = (shown: number, total: number) => (shown < total ? ` (the latest ${shown} shown)` : '');

function period(r: Report): string {
  const { since, until, first_record, last_record } = r.period;
  const asked = since || until ? `${since ?? 'the beginning of the log'} to ${until ?? 'now'} (end excluded)` : 'all records in the log';
  return first_record ? `${asked}; records found from ${first_record} to ${last_record}` : `${asked}; no records found`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${int(n)} ${n === 1 ? one : many}`;

function keysSentence(r: Report): string {
  const v = r.verification;
  const ids = `${v.keys.length === 1 ? 'key' : 'keys'} ${v.keys.join(', ') || 'none'}`;
  return v.keys_from === 'pubkey' ? `${ids}, given with --pubkey (${v.key_files.join(', ')})` : `${ids}, found in ${v.key_files.join(', ')}`;
}

function verificationSentence(r: Report): string {
  const v = r.verification;
  const sealed = v.sealed ? `records ${v.sealed.first_seq}..${v.sealed.last_seq} sealed by ${plural(v.batches, 'signed checkpoint')}` : 'no sealed records';
  const pruned = v.pruned.length > 0 ? `; pruned on purpose by retention: ${v.pruned.map((p) => `${p.first_seq}..${p.last_seq}`).join(', ')}` : '';
  const counts = `${plural(v.records, 'record')} in ${plural(v.segments, 'segment')}, ${sealed}${pruned}`;
  return v.ok ? `intact: ${counts}` : `FAILED: ${plural(v.problems, 'problem')}; ${counts}`;
}

function sections(r: Report): Section[] {
  const t = r.totals;
  const d = r.destinations;
  const n = r.exchanges;
  const v = r.verification;
  const share = (x: number) => (n ? pct(x / n) : pct(0));
  const status = (x: Report['destinations']['list'][number]) =>
    x.sanctioned ? 'sanctioned' : x.shadow ? 'shadow AI' : x.tier === 'major' || x.tier === 'long-tail' ? 'unsanctioned' : 'other';
  return [
    {
      title: 'Summary',
      paragraphs: [{ text: 'Each exchange counts once under the strongest decision on its request or response (allowed, alerted, redacted, blocked); failed, denied and tunnelled count across those.' }],
      tables: [
        {
          head: ['', 'exchanges'],
          numeric: [1],
          rows: [
            ['all exchanges', int(n)],
            ['allowed', int(t.allowed)],
            ['alerted', int(t.alerted)],
            ['redacted', int(t.redacted)],
            ['blocked', int(t.blocked)],
            ['failed', int(t.failed)],
            ['CONNECT denied', int(t.denied)],
            ['CONNECT tunnelled uninspected', int(t.tunnelled)],
            ['input tokens', int(t.input_tokens)],
            ['output tokens', int(t.output_tokens)],
          ],
        },
      ],
    },
    {
      title: '1. Destinations',
      paragraphs: [
        {
          text:
            `Sanctioned: ${int(d.sanctioned)} (${share(d.sanctioned)}); unsanctioned AI: ${int(d.unsanctioned)} (${share(d.unsanctioned)}), ` +
            `of which shadow AI (long-tail providers nobody approved): ${int(d.shadow)}; other hosts (internal, unknown): ${int(d.other)}.`,
        },
      ],
      tables: [
        {
          head: ['destination', 'provider', 'jurisdiction', 'status', 'exchanges', 'share', 'blocked', 'denied'],
          numeric: [4, 5, 6, 7],
          rows: d.list.map((x) => [x.host, x.provider, x.jurisdiction, status(x), int(x.requests), pct(x.share), int(x.blocked), int(x.denied)]),
        },
      ],
      none: 'No exchanges in the period.',
    },
    {
      title: '2. PII rate per route',
      paragraphs: [{ text: 'An exchange counts when its request or response has at least one finding of category pii.' }],
      tables: [
        {
          head: ['route', 'exchanges', 'with PII', 'PII rate', 'findings by category'],
          numeric: [1, 2, 3],
          rows: r.routes.map((x) => [
            x.route,
            int(x.requests),
            int(x.with_pii),
            pct(x.pii_rate),
            Object.entries(x.findings)
              .sort((a, b) => b[1] - a[1])
              .map(([c, k]) => `${c} ${k}`)
              .join(', '),
          ]),
        },
      ],
      none: 'No exchanges in the period.',
    },
    {
      title: '3. Cross-region traffic',
      paragraphs: [
        {
          text:
            `${int(r.cross_region.exchanges)} of ${int(r.cross_region.compared)} exchanges (${pct(r.cross_region.share)}) went to a destination in another ` +
            'jurisdiction than the caller\'s (the identity\'s, else the configured home jurisdiction). Only exchanges where both are known are compared.',
        },
      ],
      tables: [{ head: ['from', 'to', 'exchanges'], numeric: [2], rows: r.cross_region.flows.map((f) => [f.from, f.to, int(f.count)]) }],
      none: 'No cross-region exchanges.',
    },
    {
      title: '4. Failure rate by destination',
      paragraphs: [
        {
          text:
            'A failure is a response with status 500 or above, an upstream error or abort, an exchange cut at shutdown or a failed ' +
            'client TLS handshake. Client aborts, requests Sluice refused, blocks and denials are not failures of the destination.',
        },
      ],
      tables: [
        {
          head: ['destination', 'exchanges', 'failures', 'failure rate', 'p99 total ms'],
          numeric: [1, 2, 3, 4],
          rows: [...d.list].sort((a, b) => b.failure_rate - a.failure_rate || b.requests - a.requests).map((x) => [x.host, int(x.requests), int(x.failures), pct(x.failure_rate), ms(x.p99_ms)]),
        },
      ],
      none: 'No exchanges in the period.',
    },
    {
      title: '5. Latency',
      paragraphs: [{ text: 'Milliseconds, exact percentiles. Time to upstream first byte counts only exchanges the provider answered; tunnels, denials and failed handshakes are not HTTP exchanges and are left out.' }],
      tables: [
        {
          head: ['measure', 'exchanges', 'p50', 'p90', 'p99', 'p99.9', 'max'],
          numeric: [1, 2, 3, 4, 5, 6],
          rows: (
            [
              ['total (arrival to last byte)', r.latency.total],
              ['upstream time to first byte', r.latency.upstream_ttfb],
              ["Sluice's own time", r.latency.overhead],
            ] as const
          ).map(([name, p]) => [name, int(p.count), ms(p.p50), ms(p.p90), ms(p.p99), ms(p.p999), ms(p.max)]),
        },
      ],
    },
    {
      title: '6. Unauthorised attempts',
      paragraphs: [
        {
          text:
            `${int(r.unauthorized.attempts)} attempts${latest(r.unauthorized.recent.length, r.unauthorized.attempts)}: exchanges with an AI provider outside ` +
            'the sanctioned list, CONNECTs denied by interception policy, and requests a route\'s allow-list blocked.',
        },
      ],
      tables: [
        {
          head: ['time', 'exchange', 'subject', 'client', 'destination', 'provider', 'action', 'reason'],
          numeric: [],
          rows: r.unauthorized.recent.map((a) => [a.time, a.exchange_id, a.subject, a.client, a.host, a.provider, a.action, a.reason]),
        },
      ],
      none: 'None.',
    },
    {
      title: 'Top identities',
      paragraphs: [],
      tables: [
        {
          head: ['subject', 'exchanges', 'blocked', 'findings'],
          numeric: [1, 2, 3],
          rows: r.identities.map((i) => [i.subject, int(i.requests), int(i.blocked), int(i.findings)]),
        },
      ],
      none: 'No exchanges in the period.',
    },
    {
      title: 'Top findings',
      paragraphs: [{ text: 'Detected values are never stored in the log; each finding is recorded by rule, category, masked form and keyed digest.' }],
      tables: [{ head: ['rule', 'category', 'found', 'exchanges'], numeric: [2, 3], rows: r.findings.map((f) => [f.rule, f.category, int(f.count), int(f.exchanges)]) }],
      none: 'No findings.',
    },
    {
      title: 'Blocked attempts',
      paragraphs: [{ text: `${int(r.blocked.count)} blocked${latest(r.blocked.recent.length, r.blocked.count)}.` }],
      tables: [
        {
          head: ['time', 'exchange', 'subject', 'destination', 'rule', 'reason'],
          numeric: [],
          rows: r.blocked.recent.map((b) => [b.time, b.exchange_id, b.subject, b.destination, b.rule, b.reason]),
        },
      ],
      none: 'None.',
    },
    {
      title: 'Alerts',
      paragraphs: r.alerts.count > 0 ? [{ text: `${int(r.alerts.count)} alerts${latest(r.alerts.recent.length, r.alerts.count)}.` }] : [],
      tables: [
        {
          head: ['time', 'rule', 'kind', 'about', 'message', 'value', 'threshold'],
          numeric: [5, 6],
          rows: r.alerts.recent.map((a) => [a.time, a.rule, a.kind, a.subject, a.message, a.value, a.threshold]),
        },
      ],
      none: 'No alert records in the period.',
    },
    {
      title: 'Log integrity',
      paragraphs: [
        { text: `Verification ${verificationSentence(r)}.`, alarm: !v.ok },
        {
          text:
            v.keys_from === 'pubkey'
              ? `Trusted: ${keysSentence(r)}.`
              : `Trusted: ${keysSentence(r)}, the log's own keys directory. That proves integrity against accidents, not against someone who could also ` +
                'replace those files: an auditor should run the report with --pubkey and a key obtained separately.',
        },
        ...(v.problems > v.first_problems.length ? [{ text: `The first ${v.first_problems.length} problems are listed; sluice verify ${r.log_dir} lists them all.` }] : []),
        ...(r.unreadable_records > 0 ? [{ text: `${int(r.unreadable_records)} record lines in the period are not valid JSON and were left out.`, alarm: true }] : []),
      ],
      tables: [
        {
          head: ['file', 'line', 'seq', 'problem', 'detail'],
          numeric: [1, 2],
          rows: v.first_problems.map((p) => [p.file, p.line ?? '', p.seq ?? '', p.kind, p.message]),
        },
      ],
    },
    {
      title: 'How this was produced',
      paragraphs: [
        {
          text:
            `Produced by sluice report (Sluice ${r.sluice_version}) at ${r.generated_at} from the audit log in ${r.log_dir} alone: the hash-chained, ` +
            `signed records are the evidence, not the proxy's own counters. Period: ${period(r)}; ${plural(r.records, 'record')} in it, ` +
            `${plural(r.exchanges, 'exchange')}. The whole log was verified as sluice verify does, with ${keysSentence(r)}: ${verificationSentence(r)}. ` +
            'Definitions of every figure: docs/report.md in the Sluice repository.',
        },
      ],
      tables: [],
    },
  ];
}

function header(r: Report): { title: string; facts: Array<[string, string]>; alarm: string | null } {
  return {
    title: 'AI usage report',
    facts: [
      ['Period', period(r)],
      ['Records', `${int(r.records)} (${int(r.exchanges)} exchanges)`],
      ['Audit log', r.log_dir],
      ['Verification', verificationSentence(r)],
      ['Generated', `${r.generated_at} by Sluice ${r.sluice_version}`],
    ],
    alarm: r.verification.ok
      ? null
      : `Verification FAILED: the audit log has ${int(r.verification.problems)} integrity problem${r.verification.problems === 1 ? '' : 's'} (see Log integrity). ` +
        'The figures below come from a log that may have been altered.',
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** Backslash-escapes what Markdown would read as formatting (masked values are full of `*`); one line per cell. */
const md = (s: Cell) => String(s).replace(/[\r\n]+/g, ' ').replace(/[\\`*_[\]<>|~&#]/g, '\\$&');

function mdTable(t: Table): string {
  const sep = t.head.map((_, i) => (t.numeric.includes(i) ? '---:' : '---'));
  const line = (cells: Cell[]) => `| ${cells.map(md).join(' | ')} |`;
  return [line(t.head), `| ${sep.join(' | ')} |`, ...t.rows.map(line)].join('\n');
}

export function renderMarkdown(r: Report): string {
  const h = header(r);
  const out = [`# ${h.title}`, ''];
  if (h.alarm) out.push(`> **${md(h.alarm)}**`, '');
  out.push(mdTable({ head: ['', ''], numeric: [], rows: h.facts }), '');
  for (const s of sections(r)) {
    out.push(`## ${md(s.title)}`, '');
    for (const p of s.paragraphs) out.push(p.alarm ? `**${md(p.text)}**` : md(p.text), '');
    for (const t of s.tables) {
      if (t.rows.length > 0) out.push(mdTable(t), '');
      else if (s.none) out.push(md(s.none), '');
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML

const html = (s: Cell) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;max-width:1100px;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d6dae2;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}th,td{border:1px solid #d6dae2;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td{word-break:break-word}
.facts td:first-child{font-weight:600;width:9rem;background:#f7f8fb}
.alarm{background:#fde8e8;border:2px solid #c81e1e;color:#7a0e0e;padding:.75rem 1rem;font-weight:700;border-radius:4px}
.ok{color:#0f6b2f}p.alarm{margin:1rem 0}
@media print{body{margin:0;max-width:none}}
`;

function htmlTable(t: Table, cls = ''): string {
  const cell = (tag: string, c: Cell, i: number) => `<${tag}${t.numeric.includes(i) ? ' class="n"' : ''}>${html(c)}</${tag}>`;
  return (
    `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${t.head.map((c, i) => cell('th', c, i)).join('')}</tr></thead><tbody>` +
    t.rows.map((row) => `<tr>${row.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

export function renderHtml(r: Report): string {
  const h = header(r);
  const body: string[] = [`<h1>${html(h.title)}</h1>`];
  if (h.alarm) body.push(`<p class="alarm">${html(h.alarm)}</p>`);
  body.push(
    `<table class="facts"><tbody>${h.facts.map(([k, v]) => `<tr><td>${html(k)}</td><td${k === 'Verification' && r.verification.ok ? ' class="ok"' : ''}>${html(v)}</td></tr>`).join('')}</tbody></table>`,
  );
  for (const s of sections(r)) {
    body.push(`<section><h2>${html(s.title)}</h2>`);
    for (const p of s.paragraphs) body.push(`<p${p.alarm ? ' class="alarm"' : ''}>${html(p.text)}</p>`);
    for (const t of s.tables) {
      if (t.rows.length > 0) body.push(htmlTable(t));
      else if (s.none) body.push(`<p>${html(s.none)}</p>`);
    }
    body.push('</section>');
  }
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${html(`${h.title}: ${r.period.first_record ?? ''} to ${r.period.last_record ?? ''}`)}</title><style>${CSS}</style></head>\n<body>\n${body.join('\n')}\n</body></html>\n`
  );
}

export function renderReport(r: Report, format: ReportFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(r, null, 2)}\n`;
    case 'html':
      return renderHtml(r);
    case 'md':
      return `${renderMarkdown(r)}\n`;
  }
}
