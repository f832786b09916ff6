import type { HeaderSpan } from './request-head.ts';

/**
 * Copies a message head without the `remove` header lines and with `extra` header lines added at its
 * end (before the empty line). `length` includes the final CRLF CRLF.
 */
export function rewriteHead(buf: Buffer, length: number, remove: readonly HeaderSpan[], extra: Buffer | null): Buffer {
  const spans = remove.length > 1 ? [...remove].sort((a, b) => a.lineStart - b.lineStart) : remove;
  let removed = 0;
  for (const span of spans) removed += span.lineEnd - span.lineStart;
  const extraLength = extra === null ? 0 : extra.length;
  const out = Buffer.allocUnsafe(length - removed + extraLength);
  let from = 0;
  let at = 0;
  for (const span of spans) {
    at += buf.copy(out, at, from, span.lineStart);
    from = span.lineEnd;
  }
  at += buf.copy(out, at, from, length - 2);
  if (extra !== null) at += extra.copy(out, at);
  out[at++] = 13;
  out[at++] = 10;
  return out;
}
