// Network identifiers found in prompts: email addresses, IPv4/IPv6 addresses, and phone numbers (E.164, NANP).
// Deliberately a pragmatic subset of each standard: what people actually write, not what the RFCs permit.

import { isIPv6 } from 'node:net';
import { DEFAULT_DAMP_WORDS, scoreConfidence } from './context.js';
import { reject, type ValidationResult, type ValidatorContext } from './types.js';

// ---------- email ----------

/** Unquoted dot-atom local part (RFC 5322 §3.2.3); quoted strings and comments are legal but never leaked in practice. */
const LOCAL_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/;
const DOMAIN_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Alphabetic TLD, or an IDN TLD in punycode (xn--p1ai). */
const TLD = /^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/;

/** RFC 2606 / 6761 names reserved for documentation and testing: addresses there reach nobody. */
export const RESERVED_EMAIL_DOMAINS: readonly string[] = ['example.com', 'example.net', 'example.org'];
export const RESERVED_EMAIL_TLDS: readonly string[] = ['example', 'test', 'invalid', 'localhost'];

const EMAIL_WORDS = {
  boost: ['email', 'e-mail', 'mail', 'contact', 'reach', 'address'],
  damp: DEFAULT_DAMP_WORDS,
};

export function validateEmail(match: string, context: ValidatorContext): ValidationResult {
  // RFC 5321 path limit: 256 octets including the angle brackets.
  if (match.length > 254) return reject('too long');
  const at = match.lastIndexOf('@');
  if (at <= 0) return reject('bad format');
  const local = match.slice(0, at);
  const domain = match.slice(at + 1);
  if (local.length > 64) return reject('local part too long');
  if (domain.length > 253) return reject('domain too long');
  const atoms = local.split('.');
  if (!atoms.every((a) => LOCAL_ATOM.test(a))) return reject('bad local part'); // empty atom = leading/trailing/double dot
  const labels = domain.split('.');
  if (labels.length < 2) return reject('no tld');
  if (!labels.every((l) => DOMAIN_LABEL.test(l))) return reject('bad domain');
  if (!TLD.test(labels[labels.length - 1]!)) return reject('bad tld');
  const lower = domain.toLowerCase();
  const tld = labels[labels.length - 1]!.toLowerCase();
  if (RESERVED_EMAIL_TLDS.includes(tld) || RESERVED_EMAIL_DOMAINS.some((d) => lower === d || lower.endsWith('.' + d))) {
    return reject('reserved domain');
  }
  return { valid: true, confidence: scoreConfidence(0.8, context, EMAIL_WORDS) };
}

// ---------- IP addresses ----------

const OCTET = /^(?:0|[1-9]\d{0,2})$/;

/** Dotted quad with octets 0–255; leading zeros rejected because some parsers read them as octal. */
export function parseIpv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return null;
  const n = parts.map(Number);
  return n.every((x) => x <= 255) ? n : null;
}

/** Loopback, private, link-local, unspecified, broadcast, documentation: real, but they identify no one. */
function ipv4IsInternal([a, b, c]: number[]): boolean {
  return (
    a === 0 || a === 10 || a === 127 || a === 255 ||
    (a === 169 && b === 254) ||
    (a === 172 && b! >= 16 && b! <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && c === 2) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113)
  );
}

const IP_WORDS = {
  boost: ['ip', 'ip address', 'host', 'server', 'client', 'addr', 'remote'],
  damp: ['version', 'v', 'ver', 'release', ...DEFAULT_DAMP_WORDS],
};

export function validateIpv4(match: string, context: ValidatorContext): ValidationResult {
  const n = parseIpv4(match);
  if (!n) return reject('bad format');
  // Version strings (1.2.3.4) look identical; internal ranges matter less for leakage.
  return { valid: true, confidence: scoreConfidence(ipv4IsInternal(n) ? 0.25 : 0.5, context, IP_WORDS) };
}

export function validateIpv6(match: string, context: ValidatorContext): ValidationResult {
  // Zone ids (%eth0) and brackets are framing, not address; the engine should hand over the bare address.
  if (!/^[0-9A-Fa-f:.]+$/.test(match)) return reject('bad format');
  if (!match.includes(':')) return reject('bad format');
  const tail = match.slice(match.lastIndexOf(':') + 1);
  if (tail.includes('.') && !parseIpv4(tail)) return reject('bad embedded ipv4');
  if (!isIPv6(match)) return reject('bad format');
  // "::", "a::b" and friends also occur as C++ scopes and hex-ish tokens; full forms are unambiguous.
  const groups = match.split(':').filter(Boolean).length;
  const base = match.includes('::') ? (groups >= 3 ? 0.5 : 0.2) : 0.6;
  return { valid: true, confidence: scoreConfidence(base, context, IP_WORDS) };
}

// ---------- phone numbers ----------

export interface NanpNumber {
  area: string;
  exchange: string;
  line: string;
}

/** NANP rules: area and exchange are NXX (N = 2–9) and not N11, which are service codes (411, 911…). */
export function nanpReason(n: NanpNumber): string | null {
  if (!/^[2-9]\d\d$/.test(n.area)) return 'invalid area code';
  if (n.area[1] === '1' && n.area[2] === '1') return 'N11 area code';
  if (!/^[2-9]\d\d$/.test(n.exchange)) return 'invalid exchange';
  if (n.exchange[1] === '1' && n.exchange[2] === '1') return 'N11 exchange';
  // 555-0100..0199 is set aside for fiction and films; it never rings anyone.
  if (n.exchange === '555' && n.line.startsWith('01')) return 'fictional';
  return null;
}

/**
 * "(415) 555-2671", "(415)555-2671", "415-555-2671", "415.555.2671", "415 555 2671", "4155552671",
 * optionally led by "1" or "+1" and a separator. Separators between groups must agree unless the area is in parentheses.
 */
const NANP_PAREN = /^(?:\+?1[ .-]?)?\((\d{3})\) ?(\d{3})[ .-]?(\d{4})$/;
const NANP_PLAIN = /^(?:\+?1([ .-]?))?(\d{3})([ .-]?)(\d{3})\3(\d{4})$/;

export function parseNanp(match: string): NanpNumber | null {
  const p = NANP_PAREN.exec(match);
  if (p) return { area: p[1]!, exchange: p[2]!, line: p[3]! };
  const m = NANP_PLAIN.exec(match);
  if (!m) return null;
  return { area: m[2]!, exchange: m[4]!, line: m[5]! };
}

const PHONE_WORDS = {
  boost: ['phone', 'tel', 'telephone', 'mobile', 'cell', 'call', 'fax', 'sms', 'whatsapp', 'contact'],
  damp: DEFAULT_DAMP_WORDS,
};

export function validateNanpPhone(match: string, context: ValidatorContext): ValidationResult {
  const n = parseNanp(match);
  if (!n) return reject('bad format');
  const why = nanpReason(n);
  if (why) return reject(why);
  // Ten bare digits are as likely an order number as a phone.
  const base = /^\d{10}$/.test(match) ? 0.3 : 0.6;
  return { valid: true, confidence: scoreConfidence(base, context, PHONE_WORDS) };
}

/**
 * "+" then digit groups split by single spaces, dots or hyphens, with at most one parenthesised group;
 * a "(0)" trunk prefix ("+44 (0)20 …") is dialled only nationally, so it is not part of the E.164 number.
 */
const E164_SHAPE = /^\+\d+(?:[ .-]\d+|[ .-]?\(\d+\)\d*)*$/;

export function validateE164(match: string, context: ValidatorContext): ValidationResult {
  if (!E164_SHAPE.test(match)) return reject('bad format');
  if ((match.match(/\(/g) ?? []).length > 1) return reject('bad format');
  const digits = match.replace(/\(0\)/, '').replace(/\D/g, '');
  if (digits.length < 8 || digits.length > 15) return reject('bad length');
  if (digits[0] === '0') return reject('invalid country code');
  if (digits[0] === '1') {
    // Country code 1 is NANP, whose numbering we can actually check.
    if (digits.length !== 11) return reject('bad length');
    const why = nanpReason({ area: digits.slice(1, 4), exchange: digits.slice(4, 7), line: digits.slice(7) });
    if (why) return reject(why);
  }
  return { valid: true, confidence: scoreConfidence(0.6, context, PHONE_WORDS) };
}
