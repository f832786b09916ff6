// The guardian: a tiny bash process beside the election that hands the VIPs over when the election
// process dies or stalls, so that a dead election never leaves a VIP answering ARP (keepalived's
// split brain when it is SIGKILLed). It reads one line per advert interval on its stdin: "M <resign
// advert, base64>" while MASTER, "B" otherwise. At end of input (the election died, even by
// SIGKILL: the kernel closes the pipe) or, while MASTER, when no line came for `timeoutMs` (the
// election hangs), it acts: if it last heard "M", it first sends the resignation prepared by the
// election (signed, with a sequence number reserved for it) to the peers, so that they take over at
// once instead of after the master-down interval, and keeps the VIPs for `graceMs` while they do (its
// data plane still serves); then it removes the VIPs. "X" makes it exit without touching the VIPs: a
// new guardian (new peers) has taken over from it. It ignores SIGINT/SIGTERM/SIGHUP (it leaves when
// its input ends) and runs in a process group of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';

const SCRIPT = `
trap '' INT TERM HUP
dev=$1; port=$2; timeout=$3; grace=$4; shift 4
vips=(); while [ "$1" != -- ]; do vips+=("$1"); shift; done; shift
resign=
echo ready
while if [ -n "$resign" ]; then IFS= read -r -t "$timeout" line; else IFS= read -r line; fi; do
  case $line in "M "*) resign=\${line#M } ;; X) exit 0 ;; *) resign= ;; esac
done
if [ -n "$resign" ]; then
  for p in "$@"; do printf '%s' "$resign" | base64 -d > "/dev/udp/$p/$port"; done
  sleep "$grace"
fi
for v in "\${vips[@]}"; do ip addr del "$v" dev "$dev" 2>/dev/null; done
`;

export interface GuardianOptions {
  device: string;
  /** With prefix length, as they are configured (10.0.0.5/32). */
  vips: string[];
  peers: string[];
  port: number;
  /** Silence after which it acts as if the election had died. */
  timeoutMs: number;
  /** How long it keeps the VIPs after resigning (resignGraceMs). */
  graceMs: number;
}

export class Guardian {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  /** When it said ready / when it exited (ms since 1970; tests check a replacement's order). */
  readyAt = 0;
  exitedAt = 0;

  constructor(
    private readonly opts: GuardianOptions,
    private readonly log: Logger,
    /** Called when the guardian exits on its own (killed, or it timed out): the VIPs may be gone. */
    private readonly onLost: (why: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    this.stopping = false;
    const timeout = (this.opts.timeoutMs / 1000).toFixed(3);
    const grace = (this.opts.graceMs / 1000).toFixed(3);
    const args = ['-c', SCRIPT, 'vrrp-guardian', this.opts.device, String(this.opts.port), timeout, grace, ...this.opts.vips, '--', ...this.opts.peers];
    const child = spawn('bash', args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.child = child;
    child.stdin!.on('error', () => {}); // EPIPE after it exited: reported by 'exit' below
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        this.exitedAt = Date.now();
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => {
        this.readyAt = Date.now();
        resolve();
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`vrrp guardian exited at start (${code ?? signal})`)));
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      if (this.stopping) return;
      const why = `guardian exited (${signal ?? `code ${code}`})`;
      this.log.error({ code, signal }, 'vrrp: the guardian exited');
      this.onLost(why);
    });
    this.log.info({ pid: child.pid, timeoutMs: this.opts.timeoutMs, graceMs: this.opts.graceMs }, 'vrrp: guardian started');
  }

  beat(resign: Buffer | null): void {
    const stdin = this.child?.stdin;
    if (stdin?.writable) stdin.write(resign ? `M ${resign.toString('base64')}\n` : 'B\n');
  }

  /** Makes it exit without resigning or touching the VIPs (another guardian watches the election now). */
  retire(): Promise<void> {
    return this.endInput('X\n');
  }

  /** Ends its input after telling it not to resign (the election has already done so). */
  stop(): Promise<void> {
    return this.endInput('B\n');
  }

  /** A last line, then end of input; resolves when it has exited. */
  private async endInput(lastLine: string): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    if (child.stdin?.writable) child.stdin.end(lastLine);
    await this.exited;
  }
}

/**
 * The guardian of the moment. A change of peers or timing replaces it without a moment with none:
 * the new one is started and told the current state before the old one is retired (exits without
 * touching the VIPs).
 */
export class GuardianSlot {
  /** @internal (tests) */
  current: Guardian | null = null;
  private lastResign: Buffer | null = null;

  constructor(
    private readonly log: Logger,
    /** The current guardian exited on its own (it is restarted after this). */
    private readonly onLost: (why: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.current?.pid;
  }

  async start(opts: GuardianOptions): Promise<void> {
    const g = this.make(opts);
    await g.start();
    this.current = g;
  }

  beat(resign: Buffer | null): void {
    this.lastResign = resign;
    this.current?.beat(resign);
  }

  async swap(opts: GuardianOptions): Promise<void> {
    const next = this.make(opts);
    await next.start();
    next.beat(this.lastResign);
    const old = this.current;
    this.current = next;
    await old?.retire();
    this.log.info({ pid: next.pid, retired: old?.pid, peers: opts.peers }, 'vrrp: guardian replaced');
  }

  async stop(): Promise<void> {
    await this.current?.stop();
  }

  private make(opts: GuardianOptions): Guardian {
    const g: Guardian = new Guardian(opts, this.log, (why) => {
      if (this.current !== g) return;
      this.onLost(why);
      // A new guardian process; the health check keeps the election in FAULT until it runs.
      void g.start().catch((err: unknown) => this.log.error({ err }, 'vrrp: cannot restart the guardian'));
    });
    return g;
  }
}
