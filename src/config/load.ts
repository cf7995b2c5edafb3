// Loads the YAML configuration over the embedded defaults and validates it against schema.ts.
// Errors list every problem with its dotted key and line, so an operator fixes them in one pass.

import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { SluiceError } from '../errors';
import { defaultConfig, schema, type Config, type Node } from './schema';

export interface ConfigProblem {
  key: string;
  line: number;
  message: string;
}

/** Parses config text (YAML) from `source` (a file name, for messages). */
export function parseConfig(text: string, source = 'config'): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  for (const e of doc.errors) {
    problems.push({ key: '(yaml)', line: lineCounter.linePos(e.pos[0]).line, message: e.message.split('\n')[0] ?? e.message });
  }
  const config = defaultConfig() as unknown as Record<string, unknown>;
  if (problems.length === 0 && doc.contents != null) {
    const root = doc.contents as YamlNode;
    if (isScalar(root) && root.value == null) {
      // An empty file or a file of comments: defaults apply.
    } else {
      walk(schema, root, '', { root: config }, 'root', problems, lineCounter);
    }
  }
  if (problems.length > 0) throw configError(problems, source);
  return config as unknown as Config;
}

/** Reads and parses a config file; a missing or unreadable file is a config error. */
export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, path);
}

function configError(problems: ConfigProblem[], source: string): SluiceError {
  const lines = problems.map((p) => `  ${source}:${p.line}: ${p.key}: ${p.message}`);
  const err = new SluiceError('SLUICE_CONFIG_INVALID', `invalid configuration (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${lines.join('\n')}`);
  (err as SluiceError & { problems: ConfigProblem[] }).problems = problems;
  return err;
}

function lineOf(node: YamlNode | null | undefined, lc: LineCounter): number {
  const start = node?.range?.[0];
  return start == null ? 0 : lc.linePos(start).line;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/**
 * Validates `node` against `rule` and stores the result into `target[slot]`.
 * Objects merge into the defaults already in `target[slot]`; maps and lists replace them.
 */
function walk(
  rule: Node,
  node: YamlNode | null,
  path: string,
  target: Record<string, unknown>,
  slot: string,
  problems: ConfigProblem[],
  lc: LineCounter,
): void {
  const line = lineOf(node, lc);
  const key = path || '(root)';
  if (node == null || (isScalar(node) && node.value == null)) {
    if (rule.kind !== 'value') return; // `limits:` with nothing under it keeps the defaults
    problems.push({ key, line, message: 'a value is required' });
    return;
  }
  switch (rule.kind) {
    case 'value': {
      if (!isScalar(node)) {
        problems.push({ key, line, message: 'expected a single value, not a list or mapping' });
        return;
      }
      const r = rule.check(node.value);
      if (r.ok) target[slot] = r.value;
      else problems.push({ key, line, message: r.why });
      return;
    }
    case 'object': {
      if (!isMap(node)) {
        problems.push({ key, line, message: `expected a mapping with keys ${Object.keys(rule.fields).join(', ')}` });
        return;
      }
      const obj = (target[slot] ??= {}) as Record<string, unknown>;
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : '';
        seen.add(k);
        const sub = rule.fields[k];
        if (!sub) {
          problems.push({
            key: join(path, k),
            line: lineOf(pair.key as YamlNode, lc),
            message: `unknown key; expected one of ${Object.keys(rule.fields).join(', ')}`,
          });
          continue;
        }
        walk(sub, pair.value as YamlNode | null, join(path, k), obj, k, problems, lc);
      }
      for (const required of rule.required ?? []) {
        if (!seen.has(required)) problems.push({ key: join(path, required), line, message: 'is required' });
      }
      return;
    }
    case 'map': {
      if (!isMap(node)) {
        problems.push({ key, line, message: 'expected a mapping' });
        return;
      }
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key as YamlNode;
        const raw = isScalar(keyNode) ? keyNode.value : undefined;
        const kr = rule.key(raw);
        const kname = String(raw);
        if (!kr.ok) {
          problems.push({ key: join(path, kname), line: lineOf(keyNode, lc), message: kr.why });
          continue;
        }
        walk({ kind: 'value', check: rule.value }, pair.value as YamlNode | null, join(path, kname), out, String(kr.value), problems, lc);
      }
      target[slot] = out;
      return;
    }
    case 'list': {
      if (!isSeq(node)) {
        problems.push({ key, line, message: 'expected a list' });
        return;
      }
      const out: unknown[] = [];
      node.items.forEach((item, i) => {
        const holder: Record<string, unknown> = {};
        const itemPath = `${path}[${i}]`;
        walk(rule.item, item as YamlNode | null, itemPath, holder, 'v', problems, lc);
        if ('v' in holder) out.push(holder.v);
      });
      target[slot] = out;
      return;
    }
  }
}
