import { describe, expect, it } from 'vitest';
import { Player, type AudioSink, type PlayerEvent } from '../../src/audio/player.ts';
import type { SpeechAudio } from '../../src/tts/engine.ts';

/** Plays in real time with timers, like a sound card would; records when it was told to stop. */
class FakeSink implements AudioSink {
  stops: number[] = [];
  play(audio: SpeechAudio) {
    let timer: NodeJS.Timeout;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
      timer = setTimeout(resolve, audio.durationMs);
    });
    return {
      done,
      stop: () => {
        this.stops.push(performance.now());
        clearTimeout(timer);
        finish();
      },
    };
  }
}

const chunk = (ms: number): SpeechAudio => ({ pcm: new Float32Array((ms / 1000) * 16000), sampleRate: 16000, durationMs: ms });

describe('Player', () => {
  it('plays chunks back to back and reports real start and end times', async () => {
    const events: PlayerEvent[] = [];
    const p = new Player(new FakeSink(), (e) => events.push(e));
    p.enqueue('one. ', chunk(80));
    p.enqueue('two. ', chunk(60));
    p.enqueue('three.', chunk(40));
    await p.idle();
    const starts = events.filter((e) => e.type === 'chunk-start');
    const ends = events.filter((e) => e.type === 'chunk-end');
    expect(starts).toHaveLength(3);
    expect(ends).toHaveLength(3);
    for (let i = 1; i < 3; i++) expect(starts[i].atMs).toBeGreaterThanOrEqual(ends[i - 1].atMs);
    expect(ends[0].atMs - starts[0].atMs).toBeGreaterThanOrEqual(75);
    expect(p.heardChars).toBe('one. two. three.'.length);
  });

  it('a sink that cannot play reports it, and the queue goes on', async () => {
    const events: PlayerEvent[] = [];
    let calls = 0;
    const flaky: AudioSink = {
      play: (audio) => (calls++ === 0 ? { done: Promise.reject(new Error('no soundcards found')), stop: () => undefined } : new FakeSink().play(audio)),
    };
    const p = new Player(flaky, (e) => events.push(e));
    p.enqueue('lost. ', chunk(20));
    p.enqueue('heard.', chunk(20));
    await p.idle();
    expect(events.find((e) => e.type === 'error')).toMatchObject({ index: 0, message: 'no soundcards found' });
    expect(events.filter((e) => e.type === 'chunk-end')).toHaveLength(1);
  });

  it('stops within 100 ms on barge-in and says how much was heard', async () => {
    const sink = new FakeSink();
    const events: PlayerEvent[] = [];
    const p = new Player(sink, (e) => events.push(e));
    p.enqueue('The first sentence. ', chunk(200));
    p.enqueue('The second sentence is long. ', chunk(1000));
    p.enqueue('Never heard.', chunk(500));
    await new Promise((r) => setTimeout(r, 300)); // first done, second ~100 ms in
    const t0 = performance.now();
    const { heardChars } = p.stop();
    await p.idle();
    const latency = sink.stops[0] - t0;
    console.log(`player stop latency: ${latency.toFixed(2)} ms`);
    expect(latency).toBeLessThan(100);
    expect(heardChars).toBeGreaterThanOrEqual('The first sentence. '.length);
    expect(heardChars).toBeLessThan('The first sentence. The second sentence is long. '.length);
    expect(events.filter((e) => e.type === 'chunk-start')).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ type: 'stopped', heardChars });
    // Stopping twice changes nothing; a stopped player takes no more audio.
    expect(p.stop().heardChars).toBe(heardChars);
    p.enqueue('late', chunk(50));
    expect(events.filter((e) => e.type === 'chunk-start')).toHaveLength(2);
  });
});
