import { ascii, COLON, CR, equalsLower, FIELD_VALUE, HT, HttpParseError, LF, SP, TARGET_CHAR, TCHAR } from './syntax.ts';

const H_CONTENT_LENGTH = ascii('content-length');
const H_TRANSFER_ENCODING = ascii('transfer-encoding');
const H_CONNECTION = ascii('connection');
const H_HOST = ascii('host');
const H_UPGRADE = ascii('upgrade');
const H_COOKIE = ascii('cookie');
const H_X_FORWARDED_PORT = ascii('x-forwarded-port');
const H_X_FORWARDED_PROTO = ascii('x-forwarded-proto');
const HTTP_SLASH_1_DOT = ascii('HTTP/1.');

/** A header field line inside the head buffer. */
export interface HeaderSpan {
  /** Offset of the line's first byte. */
  lineStart: number;
  nameEnd: number;
  valueStart: number;
  valueEnd: number;
  /** Offset just past the line's CRLF. */
  lineEnd: number;
}

/**
 * A parsed, validated request head. The bytes stay in `buf` and are forwarded as they are; strings are
 * only made for what routing needs.
 */
export class RequestHead {
  method = '';
  target = '';
  /** HTTP/1.<minor>; only 0 and 1 are accepted. */
  minor = 1;
  /** -1 when the request has no Content-Length. */
  contentLength = -1;
  chunked = false;
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  hasUpgradeHeader = false;
  host: string | null = null;
  /** Connection header lines, dropped when forwarding so that the member connection can be reused. */
  connectionLines: HeaderSpan[] = [];
  /** X-Forwarded-Port/-Proto lines sent by the client, dropped when the listener sets its own. */
  forwardedLines: HeaderSpan[] = [];
  cookieLines: HeaderSpan[] = [];
  headers: HeaderSpan[] = [];
  private cookies: Map<string, string> | null = null;

  constructor(
    readonly buf: Buffer,
    readonly length: number,
  ) {}

  get hasBody(): boolean {
    return this.chunked || this.contentLength > 0;
  }

  /** Keep-alive as the client asked: HTTP/1.1 unless "close", HTTP/1.0 only with "keep-alive". */
  get keepAlive(): boolean {
    return this.minor === 1 ? !this.connectionClose : this.connectionKeepAlive && !this.connectionClose;
  }

  get isUpgrade(): boolean {
    return this.connectionUpgrade && this.hasUpgradeHeader;
  }

  /** Path without the query string (origin-form targets; absolute-form targets drop scheme and authority). */
  get path(): string {
    let t = this.target;
    if (t.charCodeAt(0) !== 47) {
      const scheme = t.indexOf('://');
      if (scheme > 0) {
        const slash = t.indexOf('/', scheme + 3);
        t = slash < 0 ? '/' : t.slice(slash);
      }
    }
    const q = t.indexOf('?');
    return q < 0 ? t : t.slice(0, q);
  }

  /** First value of a header by case-insensitive name. */
  header(name: string): string | undefined {
    const lower = ascii(name.toLowerCase());
    for (const h of this.headers) {
      if (equalsLower(this.buf, h.lineStart, h.nameEnd - h.lineStart, lower)) {
        return this.buf.toString('latin1', h.valueStart, h.valueEnd);
      }
    }
    return undefined;
  }

  cookie(name: string): string | undefined {
    if (this.cookies === null) {
      const jar = new Map<string, string>();
      for (const h of this.cookieLines) {
        addCookiePairs(jar, this.buf.toString('latin1', h.valueStart, h.valueEnd));
      }
      this.cookies = jar;
    }
    return this.cookies.get(name);
  }
}

/** Adds the `name=value` pairs of one Cookie header line to `jar`; the first value of a name wins. */
export function addCookiePairs(jar: Map<string, string>, line: string): void {
  for (const pair of line.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    if (!jar.has(key)) jar.set(key, pair.slice(eq + 1).trim());
  }
}

export interface RequestLimits {
  maxHeaderCount: number;
}

/**
 * Parses the complete head buf[0, length) (length from findHeadEnd). Refuses anything ambiguous:
 * obs-fold, whitespace before the colon, control bytes, duplicate or malformed Content-Length,
 * Transfer-Encoding other than exactly "chunked", Content-Length together with Transfer-Encoding,
 * missing or duplicate Host in HTTP/1.1.
 */
export function parseRequestHead(buf: Buffer, length: number, limits: RequestLimits): RequestHead {
  const head = new RequestHead(buf, length);
  let i = 0;

  // request-line = method SP request-target SP HTTP-version CRLF
  while (i < length && TCHAR[buf[i]] === 1) i++;
  if (i === 0 || buf[i] !== SP) throw new HttpParseError(400, 'malformed method');
  head.method = buf.toString('latin1', 0, i);
  const targetStart = ++i;
  while (i < length && TARGET_CHAR[buf[i]] === 1) i++;
  if (i === targetStart || buf[i] !== SP) throw new HttpParseError(400, 'malformed request target');
  head.target = buf.toString('latin1', targetStart, i);
  i++;
  if (i + 10 > length) throw new HttpParseError(400, 'malformed HTTP version');
  for (let k = 0; k < 7; k++) {
    if (buf[i + k] !== HTTP_SLASH_1_DOT[k]) {
      if (buf[i] === 72 && buf[i + 1] === 84) throw new HttpParseError(505, 'HTTP version not supported');
      throw new HttpParseError(400, 'malformed HTTP version');
    }
  }
  const minor = buf[i + 7] - 48;
  if (minor !== 0 && minor !== 1) throw new HttpParseError(505, 'HTTP version not supported');
  if (buf[i + 8] !== CR || buf[i + 9] !== LF) throw new HttpParseError(400, 'malformed request line');
  head.minor = minor;
  i += 10;

  const first = head.target.charCodeAt(0);
  if (head.method === 'CONNECT') throw new HttpParseError(501, 'CONNECT is not supported');
  if (first !== 47 && !(head.target === '*' && head.method === 'OPTIONS') && !/^https?:\/\/[^/?#]+/i.test(head.target)) {
    throw new HttpParseError(400, 'malformed request target');
  }

  let hostCount = 0;
  let transferEncodingSeen = false;
  while (true) {
    if (buf[i] === CR) {
      if (buf[i + 1] !== LF) throw new HttpParseError(400, 'bare CR in message head');
      i += 2;
      break;
    }
    const lineStart = i;
    if (buf[i] === SP || buf[i] === HT) throw new HttpParseError(400, 'obsolete line folding');
    while (TCHAR[buf[i]] === 1) i++;
    const nameEnd = i;
    if (nameEnd === lineStart || buf[i] !== COLON) throw new HttpParseError(400, 'malformed header field name');
    i++;
    while (buf[i] === SP || buf[i] === HT) i++;
    const valueStart = i;
    while (FIELD_VALUE[buf[i]] === 1) i++;
    if (buf[i] !== CR || buf[i + 1] !== LF) throw new HttpParseError(400, 'invalid byte in header field value');
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)) valueEnd--;
    i += 2;
    const span: HeaderSpan = { lineStart, nameEnd, valueStart, valueEnd, lineEnd: i };
    head.headers.push(span);
    if (head.headers.length > limits.maxHeaderCount) throw new HttpParseError(431, 'too many header fields');

    const nameLength = nameEnd - lineStart;
    switch (nameLength) {
      case 4:
        if (equalsLower(buf, lineStart, 4, H_HOST)) {
          hostCount++;
          head.host = buf.toString('latin1', valueStart, valueEnd);
        }
        break;
      case 6:
        if (equalsLower(buf, lineStart, 6, H_COOKIE)) head.cookieLines.push(span);
        break;
      case 7:
        if (equalsLower(buf, lineStart, 7, H_UPGRADE)) head.hasUpgradeHeader = true;
        break;
      case 10:
        if (equalsLower(buf, lineStart, 10, H_CONNECTION)) {
          head.connectionLines.push(span);
          readConnectionTokens(head, buf.toString('latin1', valueStart, valueEnd));
        }
        break;
      case 14:
        if (equalsLower(buf, lineStart, 14, H_CONTENT_LENGTH)) {
          if (head.contentLength !== -1) throw new HttpParseError(400, 'duplicate Content-Length');
          head.contentLength = parseContentLength(buf, valueStart, valueEnd, 400);
        }
        break;
      case 16:
        if (equalsLower(buf, lineStart, 16, H_X_FORWARDED_PORT)) head.forwardedLines.push(span);
        break;
      case 17:
        if (equalsLower(buf, lineStart, 17, H_TRANSFER_ENCODING)) {
          if (transferEncodingSeen) throw new HttpParseError(400, 'duplicate Transfer-Encoding');
          transferEncodingSeen = true;
          const coding = buf.toString('latin1', valueStart, valueEnd).toLowerCase();
          if (coding !== 'chunked') {
            if (/(^|,)\s*chunked\s*$/.test(coding)) throw new HttpParseError(501, 'unsupported transfer coding');
            throw new HttpParseError(400, 'invalid Transfer-Encoding');
          }
          head.chunked = true;
        } else if (equalsLower(buf, lineStart, 17, H_X_FORWARDED_PROTO)) head.forwardedLines.push(span);
        break;
    }
  }
  if (i !== length) throw new HttpParseError(400, 'malformed message head');

  if (head.chunked) {
    if (head.minor === 0) throw new HttpParseError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (head.contentLength !== -1) throw new HttpParseError(400, 'both Content-Length and Transfer-Encoding');
  }
  if (head.minor === 1 && hostCount === 0) throw new HttpParseError(400, 'missing Host header');
  if (hostCount > 1) throw new HttpParseError(400, 'duplicate Host header');
  return head;
}

function readConnectionTokens(head: RequestHead, value: string): void {
  for (const raw of value.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === 'close') head.connectionClose = true;
    else if (token === 'keep-alive') head.connectionKeepAlive = true;
    else if (token === 'upgrade') head.connectionUpgrade = true;
  }
}

/** 1*DIGIT, at most 15 digits (beyond Number's exact range is refused). */
export function parseContentLength(buf: Buffer, start: number, end: number, status: number): number {
  if (end === start || end - start > 15) throw new HttpParseError(status, 'invalid Content-Length');
  let n = 0;
  for (let k = start; k < end; k++) {
    const d = buf[k] - 48;
    if (d < 0 || d > 9) throw new HttpParseError(status, 'invalid Content-Length');
    n = n * 10 + d;
  }
  return n;
}
