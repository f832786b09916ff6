/** Responses the proxy writes itself, worded like HAProxy's built-in error pages. */

const REASONS: Record<number, string> = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Time-out',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Time-out',
  505: 'HTTP Version Not Supported',
};

const MESSAGES: Record<number, string> = {
  400: 'Your browser sent an invalid request.',
  403: 'Request forbidden by administrative rules.',
  408: 'Your browser didn\'t send a complete request in time.',
  431: 'The request header fields are too large.',
  501: 'The server does not support the requested feature.',
  502: 'The server returned an invalid or incomplete response.',
  503: 'No server is available to handle this request.',
  504: 'The server didn\'t respond in time.',
  505: 'The HTTP version is not supported.',
};

const cache = new Map<string, Buffer>();

/** The HTML body of an error page (HTTP/2 responses carry it without the HTTP/1.1 head). */
export function errorBody(status: number): string {
  const reason = REASONS[status] ?? 'Error';
  return `<html><body><h1>${status} ${reason}</h1>\n${MESSAGES[status] ?? reason}\n</body></html>\n`;
}

/** A complete error response; `close` adds `Connection: close` (always true after a parse error). */
export function errorResponse(status: number, close: boolean): Buffer {
  const key = `${status}:${close}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const reason = REASONS[status] ?? 'Error';
  const body = `<html><body><h1>${status} ${reason}</h1>\n${MESSAGES[status] ?? reason}\n</body></html>\n`;
  const response = Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-length: ${body.length}\r\ncache-control: no-cache\r\n` +
      `content-type: text/html\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`,
    'latin1',
  );
  cache.set(key, response);
  return response;
}

export function redirectResponse(status: number, location: string, close: boolean): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Redirect'}\r\ncontent-length: 0\r\nlocation: ${location}\r\n` +
      `cache-control: no-cache\r\n${close ? 'connection: close\r\n' : ''}\r\n`,
    'latin1',
  );
}
