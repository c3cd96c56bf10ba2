import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpeechAudio } from './wav.ts';
import { encodeWav } from './wav.ts';

/** One chunk being played; `stop()` must silence it at once. */
export interface PlaybackHandle {
  done: Promise<void>;
  stop(): void;
}

/** Where audio goes: a sound device through a program, Web Audio in the renderer, or a test fake. */
export interface AudioSink {
  play(audio: SpeechAudio): PlaybackHandle;
}

export type PlayerEvent =
  | { type: 'chunk-start'; index: number; text: string; atMs: number }
  | { type: 'chunk-end'; index: number; atMs: number }
  | { type: 'stopped'; atMs: number; heardChars: number; latencyMs: number }
  | { type: 'error'; index: number; message: string };

/**
 * Plays speech chunks back to back, reporting when each really starts and ends (the total-delay
 * metric uses these), and stops at once on barge-in, saying how much of the text was heard.
 */
export class Player {
  private queue: { text: string; audio: SpeechAudio }[] = [];
  private current: { handle: PlaybackHandle; text: string; startedMs: number; durationMs: number; index: number } | null = null;
  private heard = 0;
  private played = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly sink: AudioSink,
    private readonly onEvent: (e: PlayerEvent) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  enqueue(text: string, audio: SpeechAudio): void {
    if (this.stopped) return;
    this.queue.push({ text, audio });
    if (!this.current) this.next();
  }

  private next(): void {
    const item = this.queue.shift();
    if (!item || this.stopped) {
      this.current = null;
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    const index = this.played++;
    const startedMs = this.now();
    const handle = this.sink.play(item.audio);
    this.current = { handle, text: item.text, startedMs, durationMs: item.audio.durationMs, index };
    this.onEvent({ type: 'chunk-start', index, text: item.text, atMs: startedMs });
    handle.done.then(
      () => {
        if (this.current?.handle !== handle) return;
        this.heard += item.text.length;
        this.onEvent({ type: 'chunk-end', index, atMs: this.now() });
        this.next();
      },
      (e: Error) => {
        if (this.current?.handle !== handle) return;
        // A sink that cannot play (no sound device, say) is reported, and the queue moves on.
        this.onEvent({ type: 'error', index, message: e.message });
        this.next();
      },
    );
  }

  /** Characters of the queued text the listener has heard so far. */
  get heardChars(): number {
    const c = this.current;
    if (!c) return this.heard;
    const frac = Math.min(1, Math.max(0, (this.now() - c.startedMs) / Math.max(1, c.durationMs)));
    return this.heard + Math.floor(frac * c.text.length);
  }

  /** Barge-in: silence now, drop the queue, report what was heard. Idempotent. */
  stop(): { heardChars: number } {
    const t0 = this.now();
    if (this.stopped) return { heardChars: this.heard };
    const heardChars = this.heardChars;
    this.stopped = true;
    this.queue = [];
    const c = this.current;
    this.current = null;
    c?.handle.stop();
    this.heard = heardChars;
    this.onEvent({ type: 'stopped', atMs: this.now(), heardChars, latencyMs: this.now() - t0 });
    for (const w of this.idleWaiters.splice(0)) w();
    return { heardChars };
  }

  /** Resolves when everything queued has played (or playback was stopped). */
  idle(): Promise<void> {
    if (!this.current && !this.queue.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** Plays through a local program: aplay or sox `play` (Linux), afplay (macOS), PowerShell (Windows). */
export class ProcessSink implements AudioSink {
  constructor(private readonly program: 'aplay' | 'play' | 'afplay' | 'powershell' = ProcessSink.defaultProgram()) {}

  static defaultProgram(): 'aplay' | 'play' | 'afplay' | 'powershell' {
    if (process.platform === 'darwin') return 'afplay';
    if (process.platform === 'win32') return 'powershell';
    return 'aplay';
  }

  play(audio: SpeechAudio): PlaybackHandle {
    const pcm = encodeWav({ sampleRate: audio.sampleRate, channels: [audio.pcm] });
    let child: ChildProcess;
    let tmp: string | null = null;
    if (this.program === 'aplay' || this.program === 'play') {
      const args = this.program === 'aplay' ? ['-q', '-'] : ['-q', '-t', 'wav', '-'];
      child = spawn(this.program, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(pcm);
    } else {
      tmp = mkdtempSync(join(tmpdir(), 'asyncvoice-play-'));
      const file = join(tmp, 'chunk.wav');
      writeFileSync(file, pcm);
      child =
        this.program === 'afplay'
          ? spawn('afplay', [file], { stdio: 'ignore' })
          : spawn('powershell', ['-NoProfile', '-Command', '(New-Object Media.SoundPlayer $args[0]).PlaySync()', file], { stdio: 'ignore' });
    }
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<void>((resolve, reject) => {
      child.on('error', (e) => reject(e));
      child.on('close', (code, sig) => {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
        if (code === 0 || sig === 'SIGKILL') resolve();
        else reject(new Error(`${this.program} exited with ${code ?? sig}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`));
      });
    });
    return { done, stop: () => child.kill('SIGKILL') };
  }
}
