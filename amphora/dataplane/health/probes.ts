import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import type { HealthMonitor } from '../../../common/amphora-config/index.ts';
import { familyOf } from '../net/address.ts';
import { findHeadEnd } from '../http/syntax.ts';

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export interface ProbeTarget {
  address: string;
  port: number;
}

const MAX_HTTP_RESPONSE = 1 << 20;
/** UDP-CONNECT waits this long for an ICMP "port unreachable" before calling the member up (nc -w1). */
const UDP_ICMP_WINDOW_MS = 1_000;

/**
 * TLS for HTTPS and TLS-HELLO checks: the pool's client context when it re-encrypts (client certificate,
 * versions, ciphers), OpenSSL defaults otherwise. Never verified (Octavia renders `check-ssl verify none`).
 */
export interface ProbeTls {
  context: tls.SecureContext | undefined;
  /** HAProxy `check-alpn` (the pool's ALPN without h2, as the check speaks HTTP/1.x). */
  alpn: string[] | undefined;
}

/** Runs one check of `monitor` against `target`, bounded by the monitor's timeout. */
export function probe(monitor: HealthMonitor, target: ProbeTarget, secure: ProbeTls | null = null): Promise<ProbeResult> {
  switch (monitor.type) {
    case 'TCP':
      return tcpProbe(target, monitor.timeout);
    case 'HTTP':
      return httpProbe(monitor, target, null);
    case 'HTTPS':
      return httpProbe(monitor, target, secure ?? { context: undefined, alpn: undefined });
    case 'TLS-HELLO':
      return tlsHelloProbe(target, monitor.timeout, secure?.context);
    case 'UDP-CONNECT':
      return udpConnectProbe(target, monitor.timeout);
    case 'PING':
      return pingProbe(target, monitor.timeout);
    default:
      return Promise.resolve({ ok: false, reason: `${monitor.type} health monitors are not supported yet` });
  }
}

function tcpProbe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.address, port: target.port });
    const timer = setTimeout(() => finish({ ok: false, reason: 'connect timeout' }), timeoutMs);
    const finish = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => finish({ ok: true }));
    socket.once('error', (err) => finish({ ok: false, reason: err.message }));
  });
}

/** Parses Octavia's expected_codes: "200", "200,202", "200-204". */
export function expectedCodeMatcher(spec: string): (status: number) => boolean {
  const ranges = spec.split(',').map((part) => {
    const [from, to] = part.split('-').map(Number);
    return [from, to ?? from] as const;
  });
  return (status) => ranges.some(([from, to]) => status >= from && status <= to);
}

/** A TLS connection for a check: no verification, no SNI (HAProxy sends none without `check-sni`). */
function tlsProbeSocket(target: ProbeTarget, context: tls.SecureContext | undefined, alpn: string[] | undefined): tls.TLSSocket {
  return tls.connect({ host: target.address, port: target.port, secureContext: context, rejectUnauthorized: false, ALPNProtocols: alpn, checkServerIdentity: () => undefined });
}

/** A TLS alert from the member: it speaks TLS but refused this handshake. */
function isTlsAlert(err: NodeJS.ErrnoException): boolean {
  return typeof err.code === 'string' && /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/.test(err.code);
}

/**
 * TLS-HELLO: the member must answer a ClientHello as a TLS server. A completed handshake is up; so is a TLS
 * alert (HAProxy's ssl-hello-chk accepts a handshake or an alert record: the member speaks TLS, it only
 * refused these parameters). No answer, a closed port or a non-TLS answer is down.
 */
function tlsHelloProbe(target: ProbeTarget, timeoutMs: number, context: tls.SecureContext | undefined): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = tlsProbeSocket(target, context, undefined);
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), timeoutMs);
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result.ok) {
        // Close politely (close_notify, FIN) so that the member sees a completed handshake, not a reset.
        socket.end();
        setTimeout(() => socket.destroy(), 1_000).unref();
      } else {
        socket.destroy();
      }
      resolve(result);
    };
    socket.once('secureConnect', () => finish({ ok: true }));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(isTlsAlert(err) ? { ok: true } : { ok: false, reason: err.code ?? err.message }));
    socket.once('close', () => finish({ ok: false, reason: 'connection closed during the TLS handshake' }));
  });
}

function httpProbe(monitor: HealthMonitor, target: ProbeTarget, secure: ProbeTls | null): Promise<ProbeResult> {
  const expected = expectedCodeMatcher(monitor.expectedCodes);
  const host = monitor.domainName ?? (familyOf(target.address) === 'ipv6' ? `[${target.address}]` : target.address);
  const hostLine = monitor.httpVersion === '1.1' || monitor.domainName !== null ? `Host: ${host}\r\n` : '';
  const request = `${monitor.httpMethod} ${monitor.urlPath} HTTP/${monitor.httpVersion}\r\n${hostLine}Connection: close\r\nUser-Agent: argonaut-health-check\r\n\r\n`;
  return new Promise((resolve) => {
    const socket = secure === null ? net.connect({ host: target.address, port: target.port }) : tlsProbeSocket(target, secure.context, secure.alpn);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), monitor.timeout);
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const judge = (complete: boolean) => {
      const buf = Buffer.concat(chunks);
      let headEnd: number;
      try {
        headEnd = findHeadEnd(buf, 0, buf.length);
      } catch (err) {
        return finish({ ok: false, reason: (err as Error).message });
      }
      if (headEnd < 0) {
        if (complete) finish({ ok: false, reason: 'incomplete response' });
        return;
      }
      const head = buf.toString('latin1', 0, headEnd);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (status === null) return finish({ ok: false, reason: 'malformed status line' });
      const code = Number(status[1]);
      if (!expected(code)) return finish({ ok: false, reason: `unexpected status ${code}` });
      if (monitor.expectedBody === null || monitor.httpMethod === 'HEAD') return finish({ ok: true });
      const body = buf.toString('utf8', headEnd);
      if (body.includes(monitor.expectedBody)) return finish({ ok: true });
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (complete || (length !== null && buf.length - headEnd >= Number(length[1]))) {
        finish({ ok: false, reason: 'expected body text not found' });
      }
    };
    socket.once(secure === null ? 'connect' : 'secureConnect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_HTTP_RESPONSE) return finish({ ok: false, reason: 'response too large' });
      judge(false);
    });
    socket.once('end', () => judge(true));
    socket.once('error', (err) => finish({ ok: false, reason: err.message }));
  });
}

/**
 * Octavia's UDP-CONNECT (nc -uz): a datagram is sent; an ICMP "port unreachable" (ECONNREFUSED on a
 * connected socket) means down; a reply, or silence for the whole window, means up.
 */
function udpConnectProbe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(familyOf(target.address) === 'ipv4' ? 'udp4' : 'udp6');
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: true }), Math.min(timeoutMs, UDP_ICMP_WINDOW_MS));
    socket.on('error', (err) => finish({ ok: false, reason: err.message }));
    socket.on('message', () => finish({ ok: true }));
    socket.connect(target.port, target.address, () => {
      socket.send(Buffer.from('\r\n'), (err) => {
        if (err) finish({ ok: false, reason: err.message });
      });
    });
  });
}

/** Octavia's PING monitor runs the system ping; so does this one (raw ICMP needs privileges Node lacks). */
function pingProbe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const waitSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const args = [familyOf(target.address) === 'ipv6' ? '-6' : '-4', '-n', '-q', '-c', '1', '-W', String(waitSeconds), target.address];
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const child = spawn('ping', args, { stdio: 'ignore' });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ ok: false, reason: 'timeout' });
    }, timeoutMs + 1000);
    child.once('error', (err) => finish({ ok: false, reason: `cannot run ping: ${err.message}` }));
    child.once('exit', (code) => finish(code === 0 ? { ok: true } : { ok: false, reason: `ping exited with ${code}` }));
  });
}
