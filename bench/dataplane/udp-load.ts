import dgram from 'node:dgram';

/**
 * UDP load generator: `flows` client sockets each keep `window` datagrams in flight to host:port for
 * `seconds`, re-sending on every echo. Prints the echoed datagrams per second as JSON.
 */
const [host, portText, secondsText, flowsText = '16', windowText = '32', sizeText = '64'] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
const flows = Number(flowsText);
const window = Number(windowText);
const payload = Buffer.alloc(Number(sizeText), 0x61);

let received = 0;
let errors = 0;
let running = true;
const sockets: dgram.Socket[] = [];
for (let f = 0; f < flows; f++) {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => {
    errors++; // reported with the result; the generator keeps going
  });
  socket.on('message', () => {
    received++;
    if (running) socket.send(payload);
  });
  socket.connect(port, host, () => {
    for (let i = 0; i < window; i++) socket.send(payload);
  });
  sockets.push(socket);
}
// Refill windows periodically: datagrams dropped under load would otherwise shrink them for good.
const refill = setInterval(() => {
  for (const s of sockets) for (let i = 0; i < Math.ceil(window / 4); i++) s.send(payload);
}, 200);
const warmup = 500;
setTimeout(() => {
  const start = received;
  const t0 = process.hrtime.bigint();
  setTimeout(() => {
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    running = false;
    clearInterval(refill);
    process.stdout.write(`${JSON.stringify({ packetsPerSecond: (received - start) / elapsed, errors })}\n`);
    for (const s of sockets) s.close();
  }, seconds * 1000);
}, warmup);
