#!/usr/bin/env -S npx tsx
// Prints what a member of a DIRECT_ROUTING listener must run ("solving the ARP problem"); runs nothing.
import { runRealServerCli } from '../amphora/dataplane/directrouting/realserver-cli.ts';

process.exitCode = runRealServerCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
