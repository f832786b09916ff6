import type { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';

/**
 * What a TERMINATED_HTTPS connection knows about its client certificate, in the forms HAProxy's ssl_c_*
 * fetches give them (Octavia's X-SSL-* headers and SSL_* L7 rules are rendered with those fetches).
 * Computed once per connection, when first needed.
 */
export class ClientCertFacts {
  /** ssl_c_used: the client presented a certificate. */
  readonly used: boolean;
  /**
   * ssl_c_verify: the OpenSSL verify result, 0 = verified. A presented certificate that fails verification
   * never gets this far (the connection is refused, as HAProxy does without ca-ignore-err/crt-ignore-err),
   * and a connection without a certificate has nothing to fail: so it is always 0 here.
   */
  readonly verify = 0;
  private readonly cert: X509Certificate | undefined;
  private subjectLines: string[] | null = null;
  private issuerLines: string[] | null = null;

  constructor(cert: X509Certificate | undefined) {
    this.cert = cert;
    this.used = cert !== undefined;
  }

  static of(socket: tls.TLSSocket): ClientCertFacts {
    return new ClientCertFacts(socket.getPeerX509Certificate());
  }

  private subject(): string[] {
    if (this.subjectLines === null) this.subjectLines = this.cert === undefined ? [] : dnLines(this.cert.subject);
    return this.subjectLines;
  }

  private issuer(): string[] {
    if (this.issuerLines === null) this.issuerLines = this.cert === undefined ? [] : dnLines(this.cert.issuer);
    return this.issuerLines;
  }

  /** ssl_c_s_dn: the subject in OpenSSL's one-line form, "/C=US/O=Example/CN=client". */
  get subjectDn(): string | null {
    return this.cert === undefined ? null : oneline(this.subject());
  }

  /** ssl_c_i_dn: the issuer, same form. */
  get issuerDn(): string | null {
    return this.cert === undefined ? null : oneline(this.issuer());
  }

  /** ssl_c_s_dn(<field>): the first value of a subject field by its short name (CN, OU, O, emailAddress...), case-insensitive. */
  subjectField(name: string): string | undefined {
    const want = name.toLowerCase();
    for (const line of this.subject()) {
      const eq = line.indexOf('=');
      if (eq > 0 && line.slice(0, eq).toLowerCase() === want) return line.slice(eq + 1);
    }
    return undefined;
  }

  /** ssl_c_sha1,hex: SHA-1 of the DER certificate, upper-case hex. */
  get sha1(): string | null {
    return this.cert === undefined ? null : this.cert.fingerprint.replaceAll(':', '');
  }

  /** ssl_c_notbefore: YYMMDDhhmmssZ (UTCTime; YYYYMMDDhhmmssZ from 2050, as the certificate encodes it). */
  get notBefore(): string | null {
    return this.cert === undefined ? null : asn1Time(this.cert.validFrom);
  }

  get notAfter(): string | null {
    return this.cert === undefined ? null : asn1Time(this.cert.validTo);
  }
}

/**
 * Node prints a DN one RDN per line with RFC 2253 escapes ("O=Foo\, Inc."); OpenSSL's one-line form has
 * no escapes but shows bytes outside printable ASCII as \xHH. Each line comes back in that form.
 */
function dnLines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      let out = '';
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === '\\' && i + 1 < line.length) {
          const hex = /^[0-9A-Fa-f]{2}/.exec(line.slice(i + 1, i + 3));
          if (hex !== null) {
            out += `\\x${hex[0].toUpperCase()}`;
            i += 2;
          } else {
            out += line[++i];
          }
        } else {
          out += c;
        }
      }
      return printable(out);
    });
}

/** Bytes outside printable ASCII become \xHH: a header value never carries control bytes. */
function printable(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e ? String.fromCharCode(byte) : `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function oneline(lines: string[]): string {
  return lines.map((l) => `/${l}`).join('');
}

/** "Nov 22 07:12:38 2026 GMT" → "261122071238Z" (UTCTime until 2049, GeneralizedTime after, as RFC 5280 encodes). */
function asn1Time(text: string): string {
  const d = new Date(Date.parse(text));
  const two = (n: number) => String(n).padStart(2, '0');
  const year = d.getUTCFullYear();
  const y = year >= 2050 ? String(year) : two(year % 100);
  return `${y}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
}

/** The X-SSL-* header lines a listener inserts for one connection (values as HAProxy renders them, `%{+Q}` quoted). */
export function clientCertHeaderLines(facts: ClientCertFacts, wanted: ClientCertHeaderSet): string {
  const q = (v: string | null | undefined) => `"${v ?? ''}"`;
  let lines = '';
  if (wanted.verify) lines += `X-SSL-Client-Verify: ${facts.verify}\r\n`;
  if (wanted.hasCert) lines += `X-SSL-Client-Has-Cert: ${facts.used ? 1 : 0}\r\n`;
  if (wanted.dn) lines += `X-SSL-Client-DN: ${q(facts.subjectDn)}\r\n`;
  if (wanted.cn) lines += `X-SSL-Client-CN: ${q(facts.subjectField('CN'))}\r\n`;
  if (wanted.issuer) lines += `X-SSL-Issuer: ${q(facts.issuerDn)}\r\n`;
  if (wanted.sha1) lines += `X-SSL-Client-SHA1: ${q(facts.sha1)}\r\n`;
  if (wanted.notBefore) lines += `X-SSL-Client-Not-Before: ${q(facts.notBefore)}\r\n`;
  if (wanted.notAfter) lines += `X-SSL-Client-Not-After: ${q(facts.notAfter)}\r\n`;
  return lines;
}

export interface ClientCertHeaderSet {
  verify: boolean;
  hasCert: boolean;
  dn: boolean;
  cn: boolean;
  issuer: boolean;
  sha1: boolean;
  notBefore: boolean;
  notAfter: boolean;
}

/** Lower-case names of the X-SSL-* headers, to drop what a client sent under those names. */
export function clientCertHeaderNames(wanted: ClientCertHeaderSet): string[] {
  const names: string[] = [];
  if (wanted.verify) names.push('x-ssl-client-verify');
  if (wanted.hasCert) names.push('x-ssl-client-has-cert');
  if (wanted.dn) names.push('x-ssl-client-dn');
  if (wanted.cn) names.push('x-ssl-client-cn');
  if (wanted.issuer) names.push('x-ssl-issuer');
  if (wanted.sha1) names.push('x-ssl-client-sha1');
  if (wanted.notBefore) names.push('x-ssl-client-not-before');
  if (wanted.notAfter) names.push('x-ssl-client-not-after');
  return names;
}

/** The TLS side of a client connection on a TERMINATED_HTTPS listener, as routing and header insertion see it. */
export class TlsClientConnection {
  /** The server name the client asked for (SNI), passed on to TLS members; null when none. */
  readonly sni: string | null;
  private facts: ClientCertFacts | null = null;

  constructor(private readonly socket: tls.TLSSocket) {
    const name = (socket as { servername?: string | false | null }).servername;
    this.sni = typeof name === 'string' && name !== '' ? name : null;
  }

  get clientCert(): ClientCertFacts {
    if (this.facts === null) this.facts = ClientCertFacts.of(this.socket);
    return this.facts;
  }

  /** The negotiated version ("TLSv1.3"). */
  get protocol(): string | null {
    return this.socket.getProtocol();
  }
}
