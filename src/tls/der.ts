// Just enough DER to build X.509 certificates from a template and read a CA's subject back out.
// Minting a leaf is then a few buffer concatenations and one crypto.sign: no ASN.1 library on the hot path.

/** A DER element: tag, definite length, contents. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = contents.length === 1 ? contents[0]! : Buffer.concat(contents);
  const n = body.length;
  const head = n < 0x80 ? Buffer.from([tag, n]) : n < 0x100 ? Buffer.from([tag, 0x81, n]) : n < 0x10000 ? Buffer.from([tag, 0x82, n >> 8, n & 0xff]) : Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([head, body]);
}

export const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
export const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
/** A BIT STRING with no unused bits. */
export const bits = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
/** Context-specific constructed [n] (EXPLICIT tagging). */
export const explicit = (n: number, b: Buffer): Buffer => tlv(0xa0 | n, b);

/** An OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A positive INTEGER from big-endian bytes (a leading 0 is added when the top bit is set, as DER requires). */
export function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && bytes[i + 1]! < 0x80) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

/** UTCTime until 2049, GeneralizedTime after, as RFC 5280 requires. */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

/** Reads the element starting at `at`: where its contents start and end. */
export function read(buf: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > buf.length) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

/** The raw subject Name of a DER certificate (to become a leaf's issuer, byte for byte). */
export function certificateSubject(der: Buffer): Buffer {
  const cert = read(der, 0);
  const tbs = read(der, cert.start);
  let at = tbs.start;
  const fields: Array<{ start: number; end: number }> = [];
  while (at < tbs.end && fields.length < 6) {
    const el = read(der, at);
    fields.push({ start: at, end: el.end });
    at = el.end;
  }
  // version [0] is optional; subject is the 5th field after it.
  const first = der[fields[0]!.start] === 0xa0 ? 1 : 0;
  const subject = fields[first + 4];
  if (!subject) throw new Error('not a certificate');
  return der.subarray(subject.start, subject.end);
}
