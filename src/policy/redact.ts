// Redaction: rewrites a request body so each finding is masked inside the JSON string that held it. The body
// stays valid JSON in the provider's own format; only the masked values change.

import { jsonText } from '../providers/common';
import type { ExchangeFinding } from '../pipeline/exchange';

export type RedactResult = { ok: true; body: Buffer; masked: number } | { ok: false; why: string };

/** `messages[2].content[0].text`, `contents[0]["odd key"]` → ['messages', 2, 'content', 0, 'text'] (the adapters' jp() form). */
export function parsePath(path: string): Array<string | number> | null {
  const out: Array<string | number> = [];
  let i = 0;
  while (i < path.length) {
    const ch = path[i];
    if (ch === '[') {
      if (path[i + 1] === '"') {
        // A JSON string key: find its closing quote, honouring escapes.
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        if (path[j + 1] !== ']') return null;
        out.push(JSON.parse(path.slice(i + 1, j + 1)) as string);
        i = j + 2;
      } else {
        const j = path.indexOf(']', i);
        if (j < 0) return null;
        const n = Number(path.slice(i + 1, j));
        if (!Number.isInteger(n) || n < 0) return null;
        out.push(n);
        i = j + 1;
      }
    } else {
      if (ch === '.') i++;
      let j = i;
      while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
      if (j === i) return null;
      out.push(path.slice(i, j));
      i = j;
    }
  }
  return out;
}

/** Replaces each finding's range with its masked form, from the end so earlier offsets stay valid. */
function maskText(text: string, findings: readonly ExchangeFinding[]): string {
  const sorted = [...findings].sort((a, b) => b.start - a.start);
  let out = text;
  let floor = Infinity;
  for (const f of sorted) {
    // Overlapping findings (two rules on one value): the later range already covers it.
    if (f.end > floor) continue;
    out = out.slice(0, f.start) + f.masked + out.slice(f.end);
    floor = f.start;
  }
  return out;
}

/**
 * Masks `findings` (each naming the JSON path of its segment) in `body`. A structured value (tool arguments as an
 * object) is masked in its JSON text and parsed back; if masking broke that text, the value becomes a marker string.
 */
export function redactBody(body: Buffer, findings: readonly ExchangeFinding[]): RedactResult {
  let root: unknown;
  try {
    root = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { ok: false, why: `the body is not JSON (${(err as Error).message})` };
  }
  const byPath = new Map<string, ExchangeFinding[]>();
  for (const f of findings) {
    const list = byPath.get(f.path);
    if (list) list.push(f);
    else byPath.set(f.path, [f]);
  }
  let masked = 0;
  for (const [path, list] of byPath) {
    const keys = parsePath(path);
    if (!keys || keys.length === 0) return { ok: false, why: `no value at ${path}` };
    let parent: unknown = root;
    for (const k of keys.slice(0, -1)) {
      parent = parent && typeof parent === 'object' ? (parent as Record<string | number, unknown>)[k] : undefined;
    }
    const last = keys[keys.length - 1]!;
    if (!parent || typeof parent !== 'object' || !(last in (parent as object))) return { ok: false, why: `no value at ${path}` };
    const holder = parent as Record<string | number, unknown>;
    const value = holder[last];
    if (typeof value === 'string') {
      holder[last] = maskText(value, list);
    } else {
      const text = maskText(jsonText(value), list);
      try {
        holder[last] = JSON.parse(text);
      } catch {
        holder[last] = `[redacted by Sluice: ${list.map((f) => f.rule).join(', ')}]`;
      }
    }
    masked += list.length;
  }
  return { ok: true, body: Buffer.from(JSON.stringify(root)), masked };
}
