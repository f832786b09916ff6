import { CR, FIELD_VALUE, HEX_VALUE, HT, HttpParseError, LF, SP, TCHAR } from './syntax.ts';

const SIZE = 0;
const EXTENSION = 1;
const SIZE_LF = 2;
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const TRAILER_START = 6;
const TRAILER = 7;
const TRAILER_LF = 8;
const END_LF = 9;
const DONE = 10;

const MAX_SIZE_DIGITS = 13; // 2^52: beyond any body we would forward, and exact in a double
const MAX_TRAILER_BYTES = 16_384;

/**
 * Walks a chunked body without copying it, validating the framing strictly (hex sizes without
 * whitespace or signs, CRLF everywhere, well-formed trailers) so that the proxy and the member can
 * never disagree on where the message ends.
 */
export class ChunkedDecoder {
  private state = SIZE;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;

  constructor(
    private readonly errorStatus = 400,
    /** Receives the chunk data (without the framing), for a consumer that re-frames the body (HTTP/2). */
    private readonly onData: ((buf: Buffer, start: number, end: number) => void) | null = null,
  ) {}

  get done(): boolean {
    return this.state === DONE;
  }

  /**
   * Consumes buf[start, end). Returns the offset just past the end of the message if it ends inside
   * this range, or -1 if every byte belonged to the message and more are needed.
   */
  feed(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      const c = buf[i];
      switch (this.state) {
        case SIZE: {
          const v = HEX_VALUE[c];
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) this.fail('chunk size too large');
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) {
            this.fail('invalid chunk size');
          } else if (c === 59 /* ; */) {
            this.state = EXTENSION;
          } else if (c === CR) {
            this.state = SIZE_LF;
          } else {
            this.fail('invalid chunk size');
          }
          i++;
          break;
        }
        case EXTENSION:
          if (c === CR) this.state = SIZE_LF;
          else if (c !== HT && (c < SP || c > 126)) this.fail('invalid chunk extension');
          i++;
          break;
        case SIZE_LF:
          if (c !== LF) this.fail('chunk size line not ended by CRLF');
          this.state = this.remaining === 0 ? TRAILER_START : DATA;
          this.digits = 0;
          i++;
          break;
        case DATA: {
          const take = Math.min(this.remaining, end - i);
          if (this.onData !== null && take > 0) this.onData(buf, i, i + take);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (c !== CR) this.fail('chunk data not followed by CRLF');
          this.state = DATA_LF;
          i++;
          break;
        case DATA_LF:
          if (c !== LF) this.fail('chunk data not followed by CRLF');
          this.state = SIZE;
          i++;
          break;
        case TRAILER_START:
          if (c === CR) this.state = END_LF;
          else if (TCHAR[c] === 1) this.state = TRAILER;
          else this.fail('malformed trailer field');
          this.trailer();
          i++;
          break;
        case TRAILER:
          if (c === CR) this.state = TRAILER_LF;
          else if (FIELD_VALUE[c] !== 1) this.fail('invalid byte in trailer field');
          this.trailer();
          i++;
          break;
        case TRAILER_LF:
          if (c !== LF) this.fail('trailer line not ended by CRLF');
          this.state = TRAILER_START;
          this.trailer();
          i++;
          break;
        case END_LF:
          if (c !== LF) this.fail('chunked body not ended by CRLF');
          this.state = DONE;
          return i + 1;
        case DONE:
          return i;
      }
    }
    return -1;
  }

  private trailer(): void {
    if (++this.trailerBytes > MAX_TRAILER_BYTES) throw new HttpParseError(431, 'trailer section too large');
  }

  private fail(reason: string): never {
    throw new HttpParseError(this.errorStatus, reason);
  }
}
