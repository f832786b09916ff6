import type { AmphoraConfigInput } from '../../common/amphora-config/index.ts';

export const PORTS = {
  member1: 19001,
  member2: 19002,
  udpMember1: 19011,
  udpMember2: 19012,
  argonautHttp: 19101,
  argonautTcp: 19102,
  argonautUdp: 19103,
  argonautHttps: 19104,
  haproxyHttp: 19201,
  haproxyTcp: 19202,
  haproxyHttps: 19203,
};

/** Octavia's defaults for a TERMINATED_HTTPS listener (tls_ciphers, tls_versions, alpn_protocols). */
export const OCTAVIA_DEFAULT_CIPHERS =
  'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:' +
  'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:' +
  'DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305';

/** The TERMINATED_HTTPS listener's certificate: PEM text for Argonaut, a crt-list file for HAProxy. */
export interface BenchTls {
  certificate: string;
  privateKey: string;
  /** HAProxy crt-list naming the PEM file (certificate + key), as Octavia writes it. */
  crtListFile: string;
}

const id = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

/** Two nginx members serving the same files. */
export function renderNginxConfig(dir: string): string {
  const server = (port: number) => `
    server {
      listen 127.0.0.1:${port} reuseport backlog=4096;
      root ${dir};
      access_log off;
      keepalive_requests 1000000;
      keepalive_timeout 75s;
    }`;
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 8192; }
http {
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${dir};
  ${server(PORTS.member1)}
  ${server(PORTS.member2)}
}
`;
}

/** HAProxy as Octavia's amphora jinja template renders an HTTP and a TCP listener with default options. */
export function renderHaproxyConfig(threads: number, tls: BenchTls): string {
  const members = `    server ${id(11)} 127.0.0.1:${PORTS.member1} weight 1
    server ${id(12)} 127.0.0.1:${PORTS.member2} weight 1`;
  return `# Configuration for loadbalancer bench (Octavia amphora template shape)
global
    # Octavia renders 50000; this machine's fd limit (20000) only allows a few thousand;
    # frontends follow it. The bench uses at most a few hundred connections.
    maxconn 4000
    nbthread ${threads}
    tune.ssl.default-dh-param 2048

defaults
    retries 3
    option redispatch
    option splice-request
    option splice-response
    option http-keep-alive

frontend ${id(1)}
    maxconn 4000
    bind 127.0.0.1:${PORTS.haproxyHttp}
    mode http
    default_backend ${id(3)}:${id(1)}
    timeout client 50000

frontend ${id(2)}
    maxconn 4000
    bind 127.0.0.1:${PORTS.haproxyTcp}
    mode tcp
    default_backend ${id(4)}:${id(2)}
    timeout client 50000

frontend ${id(7)}
    maxconn 4000
    redirect scheme https if !{ ssl_fc }
    bind 127.0.0.1:${PORTS.haproxyHttps} ssl crt-list ${tls.crtListFile} ciphers ${OCTAVIA_DEFAULT_CIPHERS} no-sslv3 no-tlsv10 no-tlsv11 alpn h2,http/1.1,http/1.0
    mode http
    default_backend ${id(3)}:${id(7)}
    timeout client 50000

backend ${id(3)}:${id(1)}
    mode http
    http-reuse safe
    balance roundrobin
    fullconn 50000
    option allbackups
    timeout connect 5000
    timeout server 50000
${members}

backend ${id(3)}:${id(7)}
    mode http
    http-reuse safe
    balance roundrobin
    fullconn 50000
    option allbackups
    timeout connect 5000
    timeout server 50000
${members}

backend ${id(4)}:${id(2)}
    mode tcp
    balance roundrobin
    fullconn 50000
    option allbackups
    timeout connect 5000
    timeout server 50000
${members}
`;
}

/** The same listeners and pools as an AmphoraConfig (plus the UDP listener HAProxy cannot serve). */
export function renderArgonautConfig(tls: BenchTls): AmphoraConfigInput {
  const members = (offset: number, p1: number, p2: number) => [
    { id: id(offset + 1), address: '127.0.0.1', port: p1 },
    { id: id(offset + 2), address: '127.0.0.1', port: p2 },
  ];
  return {
    version: 1,
    configVersion: 1,
    amphoraId: id(100),
    vips: [{ address: '127.0.0.1' }],
    listeners: [
      { id: id(1), protocol: 'HTTP', ports: [PORTS.argonautHttp], defaultPoolId: id(3) },
      { id: id(2), protocol: 'TCP', ports: [PORTS.argonautTcp], defaultPoolId: id(4) },
      { id: id(5), protocol: 'UDP', ports: [PORTS.argonautUdp], defaultPoolId: id(6) },
      {
        id: id(7),
        protocol: 'TERMINATED_HTTPS',
        ports: [PORTS.argonautHttps],
        defaultPoolId: id(3),
        tls: {
          defaultCertificate: { certificate: tls.certificate, privateKey: tls.privateKey },
          ciphers: OCTAVIA_DEFAULT_CIPHERS,
          versions: ['TLSv1.2', 'TLSv1.3'],
          alpnProtocols: ['h2', 'http/1.1', 'http/1.0'],
        },
      },
    ],
    pools: [
      { id: id(3), protocol: 'HTTP', algorithm: 'ROUND_ROBIN', members: members(10, PORTS.member1, PORTS.member2) },
      { id: id(4), protocol: 'TCP', algorithm: 'ROUND_ROBIN', members: members(20, PORTS.member1, PORTS.member2) },
      { id: id(6), protocol: 'UDP', algorithm: 'ROUND_ROBIN', members: members(30, PORTS.udpMember1, PORTS.udpMember2) },
    ],
  };
}
