/** Byte classes of RFC 9110/9112, as lookup tables for the hot path. */

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HT = 9;
export const COLON = 58;

/** tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** field-vchar / SP / HTAB / obs-text: what a header value may contain. */
export const FIELD_VALUE = new Uint8Array(256);
FIELD_VALUE[HT] = 1;
for (let c = 32; c <= 126; c++) FIELD_VALUE[c] = 1;
for (let c = 128; c <= 255; c++) FIELD_VALUE[c] = 1;

/** Request-target bytes: visible ASCII only (no spaces, controls or raw non-ASCII). */
export const TARGET_CHAR = new Uint8Array(256);
for (let c = 33; c <= 126; c++) TARGET_CHAR[c] = 1;

export const HEX_VALUE = new Int8Array(256).fill(-1);
for (let c = 48; c <= 57; c++) HEX_VALUE[c] = c - 48;
for (let c = 65; c <= 70; c++) HEX_VALUE[c] = c - 55;
for (let c = 97; c <= 102; c++) HEX_VALUE[c] = c - 87;

/** Case-insensitive compare of buf[start, start+lower.length) with an all-lowercase ASCII name. */
export function equalsLower(buf: Buffer, start: number, length: number, lower: Uint8Array): boolean {
  if (length !== lower.length) return false;
  for (let i = 0; i < length; i++) if ((buf[start + i] | 0x20) !== lower[i]) return false;
  return true;
}

export function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** A request or response the proxy refuses; `status` is what the client gets. */
export class HttpParseError extends Error {
  constructor(
    readonly status: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'HttpParseError';
  }
}

/**
 * Finds the end of a message head: the index just past the empty line, or -1 while incomplete.
 * Every line must end in CRLF: a bare LF is refused rather than guessed at.
 */
export function findHeadEnd(buf: Buffer, from: number, end: number): number {
  let i = buf.indexOf(LF, from);
  while (i !== -1 && i < end) {
    if (i === 0 || buf[i - 1] !== CR) throw new HttpParseError(400, 'bare LF in message head');
    if (i >= 3 && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
    i = buf.indexOf(LF, i + 1);
  }
  return -1;
}
