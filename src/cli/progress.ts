/** A one-line progress bar on stderr (only when stderr is a terminal; otherwise sparse lines). */
export class ProgressBar {
  private lastPct = -1;
  private lastLine = 0;
  constructor(private readonly label: string) {}

  update(done: number, total: number | null, detail = ''): void {
    const tty = process.stderr.isTTY;
    if (total && total > 0) {
      const pct = Math.min(100, Math.floor((done / total) * 100));
      if (pct === this.lastPct) return;
      this.lastPct = pct;
      const width = 24;
      const fill = Math.round((pct / 100) * width);
      const line = `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${detail}`;
      if (tty) process.stderr.write(`\r${line.padEnd(this.lastLine)}`);
      else if (pct % 25 === 0) process.stderr.write(line + '\n');
      this.lastLine = line.length;
    } else if (tty) {
      process.stderr.write(`\r${this.label} ${formatBytes(done)} ${detail}`);
    }
  }

  done(message = ''): void {
    if (process.stderr.isTTY && this.lastLine) process.stderr.write('\n');
    if (message) process.stderr.write(`${this.label}: ${message}\n`);
    this.lastLine = 0;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
