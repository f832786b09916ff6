// A minimal ASN.1 DER/BER reader: enough to walk certificates, CRLs, PKCS#7 bundles and PKCS#12
// files (indefinite lengths and constructed OCTET STRINGs included, as Java and Windows write them).
// It never copies key material anywhere but the buffers it returns.

export interface Node {
  /** Class (0 universal, 1 application, 2 context, 3 private). */
  cls: number;
  constructed: boolean;
  /** Tag number within its class. */
  tag: number;
  /** The whole encoding (header, content and end-of-contents). */
  raw: Buffer;
  /** The content octets (without a trailing end-of-contents for indefinite lengths). */
  content: Buffer;
}

export class DerError extends Error {
  override name = 'DerError';
}

export const TAG = { BOOLEAN: 1, INTEGER: 2, BIT_STRING: 3, OCTET_STRING: 4, NULL: 5, OID: 6, UTF8: 12, SEQUENCE: 16, SET: 17, PRINTABLE: 19, IA5: 22, UTC_TIME: 23, GENERALIZED_TIME: 24, BMP: 30 } as const;

/** Reads one element at `offset`; `end` is where the element ends in `buf`. */
export function readNode(buf: Buffer, offset = 0): { node: Node; end: number } {
  let pos = offset;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new DerError('truncated ASN.1 data');
  };
  need(2);
  const first = buf[pos++]!;
  const cls = first >> 6;
  const constructed = (first & 0x20) !== 0;
  let tag = first & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (let i = 0; ; i++) {
      need(1);
      const b = buf[pos++]!;
      tag = tag * 128 + (b & 0x7f);
      if (!(b & 0x80)) break;
      if (i > 4) throw new DerError('ASN.1 tag too long');
    }
  }
  need(1);
  const lenByte = buf[pos++]!;
  if (lenByte === 0x80) {
    if (!constructed) throw new DerError('indefinite length on a primitive ASN.1 element');
    const start = pos;
    for (;;) {
      need(2);
      if (buf[pos] === 0 && buf[pos + 1] === 0) {
        const node: Node = { cls, constructed, tag, raw: buf.subarray(offset, pos + 2), content: buf.subarray(start, pos) };
        return { node, end: pos + 2 };
      }
      pos = readNode(buf, pos).end;
    }
  }
  let length = lenByte;
  if (lenByte & 0x80) {
    const n = lenByte & 0x7f;
    if (n > 4) throw new DerError('ASN.1 length too large');
    need(n);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
  }
  need(length);
  const node: Node = { cls, constructed, tag, raw: buf.subarray(offset, pos + length), content: buf.subarray(pos, pos + length) };
  return { node, end: pos + length };
}

/** Parses a buffer that must hold exactly one element. */
export function parse(buf: Buffer): Node {
  const { node, end } = readNode(buf, 0);
  if (end !== buf.length) throw new DerError('trailing data after ASN.1 element');
  return node;
}

/** The elements inside a constructed element. */
export function children(node: Node): Node[] {
  if (!node.constructed) throw new DerError('expected a constructed ASN.1 element');
  const out: Node[] = [];
  let pos = 0;
  while (pos < node.content.length) {
    const { node: child, end } = readNode(node.content, pos);
    out.push(child);
    pos = end;
  }
  return out;
}

export function expect(node: Node | undefined, tag: number, cls = 0): Node {
  if (!node || node.tag !== tag || node.cls !== cls) throw new DerError(`unexpected ASN.1 element (wanted ${cls === 0 ? 'universal' : `class ${cls}`} tag ${tag})`);
  return node;
}

export function sequence(node: Node | undefined): Node[] {
  return children(expect(node, TAG.SEQUENCE));
}

/** The octets of an OCTET STRING, joining the pieces of a constructed (BER) one. */
export function octets(node: Node | undefined): Buffer {
  const n = expect(node, TAG.OCTET_STRING);
  if (!n.constructed) return n.content;
  return Buffer.concat(children(n).map((c) => octets(c)));
}

/** The content of an OCTET STRING whatever its tag (for IMPLICIT tagging). */
export function implicitOctets(node: Node): Buffer {
  if (!node.constructed) return node.content;
  return Buffer.concat(children(node).map((c) => implicitOctets(c)));
}

export function integer(node: Node | undefined): number {
  const n = expect(node, TAG.INTEGER);
  if (n.content.length > 6) throw new DerError('ASN.1 integer too large');
  let v = 0;
  for (const b of n.content) v = v * 256 + b;
  return v;
}

export function oid(node: Node | undefined): string {
  const n = expect(node, TAG.OID);
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < n.content.length; i++) {
    const b = n.content[i]!;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** The bytes of a BIT STRING (whose unused-bits count must be 0). */
export function bitString(node: Node | undefined): Buffer {
  const n = expect(node, TAG.BIT_STRING);
  if (n.content[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return n.content.subarray(1);
}

/** The explicitly tagged [n] element's single child. */
export function explicit(node: Node | undefined, tag: number): Node {
  const n = expect(node, tag, 2);
  const kids = children(n);
  if (kids.length !== 1) throw new DerError(`[${tag}] should hold one element`);
  return kids[0]!;
}

/** UTCTime or GeneralizedTime as a Date. */
export function time(node: Node | undefined): Date {
  if (!node || node.cls !== 0 || (node.tag !== TAG.UTC_TIME && node.tag !== TAG.GENERALIZED_TIME)) throw new DerError('expected a time');
  const s = node.content.toString('latin1');
  const m = node.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d+)?Z$/.exec(s);
  if (!m) throw new DerError(`unreadable time ${s}`);
  let year = Number(m[1]);
  if (node.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)));
}

/** An AlgorithmIdentifier: its OID and its parameters (undefined when absent or NULL). */
export function algorithm(node: Node | undefined): { oid: string; params: Node | undefined } {
  const [id, params] = sequence(node);
  return { oid: oid(id), params: params && !(params.tag === TAG.NULL && params.cls === 0) ? params : undefined };
}

// Encoders for the few structures written here (tests build PKCS#7 bundles with them).
export function encode(tagByte: number, content: Buffer): Buffer {
  const len = content.length;
  let header: number[];
  if (len < 0x80) header = [len];
  else {
    const bytes: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff);
    header = [0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from([tagByte, ...header]), content]);
}
