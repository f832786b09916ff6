/**
 * HAProxy's server health state machine: `rise` consecutive successes bring a DOWN server UP, `fall`
 * consecutive failures take an UP server DOWN. Servers start UP and go DOWN at their first failed check
 * (HAProxy's default init-state), so a new member serves at once but a dead one is found quickly.
 */
export class CheckState {
  up = true;
  private successes = 0;
  private failures = 0;
  private checked = false;

  constructor(
    private rise: number,
    private fall: number,
  ) {}

  /** Records one check result; returns true when the UP/DOWN state or its label changed. */
  record(ok: boolean): boolean {
    const before = this.label;
    const first = !this.checked;
    this.checked = true;
    if (this.up) {
      if (ok) {
        this.failures = 0;
      } else if (first || ++this.failures >= this.fall) {
        this.up = false;
        this.failures = 0;
        this.successes = 0;
      }
    } else if (ok) {
      if (++this.successes >= this.rise) {
        this.up = true;
        this.successes = 0;
      }
    } else {
      this.successes = 0;
    }
    return this.label !== before;
  }

  /** "UP", "DOWN", or the transitional "UP 1/3" (failing) and "DOWN 1/2" (recovering). */
  get label(): string {
    if (this.up) return this.failures > 0 ? `UP ${this.failures}/${this.fall}` : 'UP';
    return this.successes > 0 ? `DOWN ${this.successes}/${this.rise}` : 'DOWN';
  }
}
