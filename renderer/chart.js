// The chart across turns: voice to voice and total delay per finished turn, one series per mode, so
// async, think and no-think can be compared at a glance (a mode's series has gaps where others ran).
const MODE_COLOURS = { async: '#27ae60', think: '#c0392b', nothink: '#2f6fde' };
const MODES = Object.keys(MODE_COLOURS);

export class TurnChart {
  /** `el`: where uPlot draws; `onError(message)` if the chart library did not load. */
  constructor(el, onError) {
    this.el = el;
    this.onError = onError;
    this.chart = null;
    // Per finished turn: its id, and its voice to voice and total delay under the mode it ran in (null under the others).
    this.turns = [];
    this.v2v = Object.fromEntries(MODES.map((k) => [k, []]));
    this.delay = Object.fromEntries(MODES.map((k) => [k, []]));
  }

  /** Adds a finished turn's figures (once per turn); returns how many turns the chart holds. */
  add(m, mode) {
    if (this.turns.includes(m.turnId)) return this.turns.length;
    this.turns.push(m.turnId);
    for (const k of MODES) {
      this.v2v[k].push(k === mode ? m.voiceToVoiceMs : null);
      this.delay[k].push(k === mode ? m.totalDelayMs : null);
    }
    const data = [this.turns, ...MODES.map((k) => this.v2v[k]), ...MODES.map((k) => this.delay[k])];
    if (!window.uPlot) {
      this.onError('the chart library did not load');
      return this.turns.length;
    }
    if (this.chart) this.chart.setData(data);
    else {
      this.chart = new window.uPlot(
        {
          width: Math.max(260, this.el.clientWidth || 360),
          height: 180,
          scales: { x: { time: false } },
          axes: [{ label: 'turn' }, { label: 'ms' }],
          series: [
            { label: 'turn' },
            ...MODES.map((k) => ({ label: `${k} voice→voice`, stroke: MODE_COLOURS[k], width: 2, points: { show: true }, spanGaps: true })),
            ...MODES.map((k) => ({ label: `${k} total delay`, stroke: MODE_COLOURS[k], dash: [4, 4], points: { show: true }, spanGaps: true })),
          ],
        },
        data,
        this.el,
      );
    }
    return this.turns.length;
  }
}
