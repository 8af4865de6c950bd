/** Live countdowns to offer and lease deadlines: pure formatting plus a set of elements updated each tick. */

export function remainingSeconds(expiresAt: string | null | undefined, now: number): number {
  if (!expiresAt) return 0;
  const at = Date.parse(expiresAt);
  return Number.isNaN(at) ? 0 : Math.max(0, Math.floor((at - now) / 1000));
}

/** "4m 05s", "2h 03m", "1d 4h", or "expired". */
export function formatRemaining(expiresAt: string | null | undefined, now: number): string {
  const left = remainingSeconds(expiresAt, now);
  if (left <= 0) return "expired";
  const pad = (n: number) => String(n).padStart(2, "0");
  const days = Math.floor(left / 86400);
  const hours = Math.floor((left % 86400) / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m`;
  return `${minutes}m ${pad(seconds)}s`;
}

interface Entry {
  el: HTMLElement;
  expiresAt: string;
  running: string;
  over: string;
}

/** Elements that show the time left until a deadline; `tick()` rewrites them (the view calls it each second). */
export class Countdowns {
  private entries: Entry[] = [];

  /** Shows "`running` 4m 05s" until the deadline, then `over`. */
  add(el: HTMLElement, expiresAt: string, running: string, over: string, now = Date.now()): void {
    this.entries.push({ el, expiresAt, running, over });
    this.render(this.entries[this.entries.length - 1], now);
  }

  clear(): void {
    this.entries = [];
  }

  tick(now = Date.now()): void {
    for (const entry of this.entries) this.render(entry, now);
  }

  private render(entry: Entry, now: number): void {
    const left = formatRemaining(entry.expiresAt, now);
    entry.el.setText(left === "expired" ? entry.over : `${entry.running} ${left}`);
    entry.el.toggleClass("owp-urgent", remainingSeconds(entry.expiresAt, now) < 60);
  }
}
