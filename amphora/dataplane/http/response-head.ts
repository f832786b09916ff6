import { parseContentLength, type HeaderSpan } from './request-head.ts';
import { ascii, COLON, CR, equalsLower, FIELD_VALUE, HT, HttpParseError, LF, SP, TCHAR } from './syntax.ts';

const H_CONTENT_LENGTH = ascii('content-length');
const H_TRANSFER_ENCODING = ascii('transfer-encoding');
const H_CONNECTION = ascii('connection');
const H_SET_COOKIE = ascii('set-cookie');
const H_STRICT_TRANSPORT_SECURITY = ascii('strict-transport-security');

/** A member's response head, parsed only as far as framing and persistence need. */
export interface ResponseHead {
  length: number;
  status: number;
  minor: number;
  contentLength: number;
  chunked: boolean;
  connectionClose: boolean;
  connectionKeepAlive: boolean;
  connectionLines: HeaderSpan[];
  setCookies: string[];
  /** Strict-Transport-Security lines (only collected when asked: a listener with HSTS replaces them). */
  hstsLines: HeaderSpan[];
}

/** A member that answers with something unparsable gets its client a 502, as HAProxy does. */
export function parseResponseHead(buf: Buffer, length: number, wantCookies: boolean, wantHsts = false): ResponseHead {
  const head: ResponseHead = {
    length,
    status: 0,
    minor: 1,
    contentLength: -1,
    chunked: false,
    connectionClose: false,
    connectionKeepAlive: false,
    connectionLines: [],
    setCookies: [],
    hstsLines: [],
  };
  // status-line = HTTP-version SP 3DIGIT SP [reason-phrase] CRLF
  if (
    length < 14 ||
    buf[0] !== 72 || buf[1] !== 84 || buf[2] !== 84 || buf[3] !== 80 || buf[4] !== 47 || buf[5] !== 49 || buf[6] !== 46 ||
    (buf[7] !== 48 && buf[7] !== 49) ||
    buf[8] !== SP
  ) {
    throw new HttpParseError(502, 'malformed status line from member');
  }
  head.minor = buf[7] - 48;
  const d1 = buf[9] - 48;
  const d2 = buf[10] - 48;
  const d3 = buf[11] - 48;
  if (d1 < 1 || d1 > 5 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) throw new HttpParseError(502, 'malformed status code from member');
  head.status = d1 * 100 + d2 * 10 + d3;
  let i = 12;
  if (buf[i] === SP) {
    i++;
    while (FIELD_VALUE[buf[i]] === 1) i++;
  }
  if (buf[i] !== CR || buf[i + 1] !== LF) throw new HttpParseError(502, 'malformed status line from member');
  i += 2;

  let transferEncoding = false;
  while (true) {
    if (buf[i] === CR) {
      i += 2;
      break;
    }
    const lineStart = i;
    while (TCHAR[buf[i]] === 1) i++;
    const nameEnd = i;
    if (nameEnd === lineStart || buf[i] !== COLON) throw new HttpParseError(502, 'malformed header from member');
    i++;
    while (buf[i] === SP || buf[i] === HT) i++;
    const valueStart = i;
    while (FIELD_VALUE[buf[i]] === 1) i++;
    if (buf[i] !== CR || buf[i + 1] !== LF) throw new HttpParseError(502, 'malformed header from member');
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)) valueEnd--;
    i += 2;
    const nameLength = nameEnd - lineStart;
    if (nameLength === 14 && equalsLower(buf, lineStart, 14, H_CONTENT_LENGTH)) {
      const n = parseContentLength(buf, valueStart, valueEnd, 502);
      if (head.contentLength !== -1 && head.contentLength !== n) throw new HttpParseError(502, 'conflicting Content-Length from member');
      head.contentLength = n;
    } else if (nameLength === 17 && equalsLower(buf, lineStart, 17, H_TRANSFER_ENCODING)) {
      transferEncoding = true;
      head.chunked = /(^|,)\s*chunked\s*$/i.test(buf.toString('latin1', valueStart, valueEnd));
    } else if (nameLength === 10 && equalsLower(buf, lineStart, 10, H_CONNECTION)) {
      head.connectionLines.push({ lineStart, nameEnd, valueStart, valueEnd, lineEnd: i });
      for (const raw of buf.toString('latin1', valueStart, valueEnd).split(',')) {
        const token = raw.trim().toLowerCase();
        if (token === 'close') head.connectionClose = true;
        else if (token === 'keep-alive') head.connectionKeepAlive = true;
      }
    } else if (wantCookies && nameLength === 10 && equalsLower(buf, lineStart, 10, H_SET_COOKIE)) {
      head.setCookies.push(buf.toString('latin1', valueStart, valueEnd));
    } else if (wantHsts && nameLength === 25 && equalsLower(buf, lineStart, 25, H_STRICT_TRANSPORT_SECURITY)) {
      head.hstsLines.push({ lineStart, nameEnd, valueStart, valueEnd, lineEnd: i });
    }
  }
  if (i !== length) throw new HttpParseError(502, 'malformed response head from member');
  if (transferEncoding) {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a non-chunked coding is read until close.
    head.contentLength = -1;
    if (!head.chunked) head.connectionClose = true;
  }
  return head;
}
