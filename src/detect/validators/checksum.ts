// Check-digit arithmetic shared by several families (cards, SIN, NPI use Luhn; IBAN uses ISO 7064 mod 97-10).
// Inputs are pre-normalised digit/alphanumeric strings; callers own format and length rules.

/** Luhn (ISO/IEC 7812-1) over a string of ASCII digits, check digit last. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits) || digits.length < 2) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * ISO 7064 mod 97-10 remainder of an alphanumeric string with letters as 10..35.
 * Processed piecewise because the expanded number (up to ~70 digits) overflows doubles.
 */
export function mod97(alnum: string): number {
  let rem = 0;
  for (const ch of alnum) {
    const code = ch.charCodeAt(0);
    if (code >= 48 && code <= 57) {
      rem = (rem * 10 + (code - 48)) % 97;
    } else if (code >= 65 && code <= 90) {
      rem = (rem * 100 + (code - 55)) % 97;
    } else {
      return -1;
    }
  }
  return rem;
}
