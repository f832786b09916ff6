import dgram from 'node:dgram';

/** UDP member for the benchmark: echoes every datagram back. Ports come as arguments. */
const sockets = process.argv.slice(2).map((port) => {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, remote) => socket.send(message, remote.port, remote.address));
  socket.on('error', (err) => {
    process.stderr.write(`udp echo ${port}: ${err.message}\n`);
    process.exit(1);
  });
  socket.bind(Number(port), '127.0.0.1');
  return socket;
});
process.on('SIGTERM', () => {
  for (const s of sockets) s.close();
  process.exit(0);
});
