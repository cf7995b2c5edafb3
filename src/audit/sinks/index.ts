// Builds the configured SIEM sinks, checking what the schema cannot: URL schemes, options that apply to the
// sink's type, and the token and CA files (read here, so a bad path stops the start, not the first delivery).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditSinkSpec } from '../../config/schema';
import { SluiceError } from '../../errors';
import { DeliveryCore } from './delivery';
import { HttpTransport } from './http';
import { SyslogTransport } from './syslog';
import type { AuditSink } from './types';

export type { AuditSink, SinkStats } from './types';

const DEFAULTS = { queue_records: 10_000, batch_records: 500, max_backoff_ms: 30_000 };

/** One sink per spec; each keeps its cursor in `<dataDir>/sinks/<name>.cursor` and catches up from `auditDir`. */
export function createSinks(specs: readonly AuditSinkSpec[], dataDir: string, auditDir: string): AuditSink[] {
  const names = new Set<string>();
  return specs.map((spec, i) => {
    const key = `audit.sinks[${i}]`;
    const invalid = (field: string, why: string) => new SluiceError('SLUICE_CONFIG_INVALID', `${key}.${field}: ${why}`);
    if (names.has(spec.name)) throw invalid('name', `"${spec.name}" names another sink too; each keeps its own cursor file, so names must differ`);
    names.add(spec.name);
    let url: URL;
    try {
      url = new URL(spec.url);
    } catch {
      throw invalid('url', `"${spec.url}" is not a URL`);
    }
    const ca = spec.ca ? readConfigFile(spec.ca, `${key}.ca`) : null;
    let transport;
    if (spec.type === 'syslog') {
      if (url.protocol !== 'tcp:' && url.protocol !== 'tls:') throw invalid('url', `"${spec.url}": a syslog sink needs tcp://host:port or tls://host:port`);
      if (!url.hostname || !url.port || url.port === '0') throw invalid('url', `"${spec.url}": name the host and the port, e.g. tcp://siem.example:514`);
      if ((url.pathname && url.pathname !== '/') || url.search) throw invalid('url', `"${spec.url}": a syslog URL has no path or query`);
      if (spec.format) throw invalid('format', 'applies to http sinks only');
      if (spec.token_file) throw invalid('token_file', 'applies to http sinks only');
      if (ca && url.protocol !== 'tls:') throw invalid('ca', 'applies to tls:// only');
      transport = new SyslogTransport({ host: unbracket(url.hostname), port: Number(url.port), tls: url.protocol === 'tls:', ca });
    } else {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('url', `"${spec.url}": an http sink needs an http:// or https:// URL`);
      if (!spec.format) throw invalid('format', 'required for an http sink: hec (Splunk HTTP Event Collector) or ndjson (Elastic _bulk)');
      if (ca && url.protocol !== 'https:') throw invalid('ca', 'applies to https:// only');
      const token = spec.token_file ? readConfigFile(spec.token_file, `${key}.token_file`).trim() : null;
      if (token === '') throw invalid('token_file', `${spec.token_file} is empty`);
      if (spec.format === 'hec' && token === null) throw invalid('token_file', 'required for format hec (Splunk sends 401 without a token)');
      transport = new HttpTransport({ url, format: spec.format, token, ca });
    }
    return new DeliveryCore(
      {
        name: spec.name,
        type: spec.type,
        auditDir,
        cursorFile: join(dataDir, 'sinks', `${spec.name}.cursor`),
        queueRecords: spec.queue_records ?? DEFAULTS.queue_records,
        batchRecords: spec.batch_records ?? DEFAULTS.batch_records,
        maxBackoffMs: spec.max_backoff_ms ?? DEFAULTS.max_backoff_ms,
      },
      transport,
    );
  });
}

function readConfigFile(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${key}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** `new URL('tcp://[::1]:514').hostname` keeps the brackets; sockets want the bare address. */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
