// Microphone capture (getUserMedia + AudioWorklet → PCM16 16 kHz frames) and speech playback
// (Web Audio, chunks back to back, exact start/end reported, immediate stop on barge-in).

// Speakers (the default): echo cancellation keeps the assistant's own voice from interrupting it,
// with noise suppression for the room. Headphones: no echo to cancel, and every processing step
// off: in bench:capture's quiet room no processing recognised best in every run (pocketsphinx WER
// 28-33 % against 35-48 % for any processing); in noise the runs were mixed, about even on
// average (docs/architecture.md).
// Gain control stays off: the recogniser normalises level itself.
export async function startCapture(onFrame, { echoCancellation = true, noiseSuppression = true, autoGainControl = false } = {}) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation, noiseSuppression, autoGainControl, channelCount: 1 },
  });
  const ctx = new AudioContext({ sampleRate: 16000 });
  await ctx.audioWorklet.addModule('/capture-worklet.js');
  const source = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'capture-processor');
  node.port.onmessage = (e) => onFrame(e.data);
  source.connect(node);
  // The worklet must be pulled to run; route it to a muted gain so nothing is heard.
  const mute = ctx.createGain();
  mute.gain.value = 0;
  node.connect(mute).connect(ctx.destination);
  const settings = stream.getAudioTracks()[0]?.getSettings() ?? {};
  return {
    echoCancellation: settings.echoCancellation === true,
    noiseSuppression: settings.noiseSuppression === true,
    // A page that has not been clicked yet may not run audio: frames flow once this is resumed.
    suspended: ctx.state === 'suspended',
    resume: () => ctx.resume(),
    stop: () => {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
    },
  };
}

export class SpeechPlayer {
  constructor(report) {
    this.report = report; // (chunkId, event, heardChars?) => void
    this.ctx = new AudioContext();
    this.playing = []; // { chunkId, text, source, start, duration, timer }
    this.nextStart = 0;
  }

  async play(chunk) {
    if (this.ctx.state === 'suspended') await this.ctx.resume();
    const pcm = new Int16Array(chunk.pcm.buffer ? chunk.pcm.buffer.slice(chunk.pcm.byteOffset, chunk.pcm.byteOffset + chunk.pcm.byteLength) : chunk.pcm);
    const buffer = this.ctx.createBuffer(1, Math.max(1, pcm.length), chunk.sampleRate);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    const start = Math.max(this.ctx.currentTime + 0.02, this.nextStart);
    this.nextStart = start + buffer.duration;
    const item = { chunkId: chunk.chunkId, text: chunk.text, source, start, duration: buffer.duration, stopped: false };
    item.timer = setTimeout(() => this.report(item.chunkId, 'start'), Math.max(0, (start - this.ctx.currentTime) * 1000));
    source.onended = () => {
      this.playing = this.playing.filter((p) => p !== item);
      if (!item.stopped) this.report(item.chunkId, 'end');
    };
    source.start(start);
    this.playing.push(item);
  }

  get active() {
    return this.playing.length > 0;
  }

  /** Stops everything now; the chunk that was audible reports how much of its text was heard. */
  stopAll() {
    const now = this.ctx.currentTime;
    for (const item of this.playing) {
      item.stopped = true;
      clearTimeout(item.timer);
      try { item.source.stop(); } catch { /* not started */ }
      if (now >= item.start) {
        const frac = Math.min(1, (now - item.start) / item.duration);
        this.report(item.chunkId, 'stopped', Math.floor(frac * item.text.length));
      }
    }
    this.playing = [];
    this.nextStart = 0;
  }
}
