import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/async-reasoning/events.ts';
import { HeldOutput, LineWrapper, liveView, printable } from '../../src/cli/live-view.ts';

/** Enough of a terminal to replay what the view wrote: text, \n, \r, clear line, cursor up. */
function screen(output: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  const plain = output.replace(/\x1b\[[0-9;]*m/g, ''); // colours only style
  for (let i = 0; i < plain.length; i++) {
    const rest = plain.slice(i);
    if (rest.startsWith('\x1b[2K')) {
      lines[row] = '';
      i += 3;
    } else if (rest.startsWith('\x1b[1A')) {
      row = Math.max(0, row - 1);
      i += 3;
    } else if (plain[i] === '\r') col = 0;
    else if (plain[i] === '\n') {
      row++;
      col = 0;
      lines[row] ??= '';
    } else {
      const l = lines[row].padEnd(col);
      lines[row] = l.slice(0, col) + plain[i] + l.slice(col + 1);
      col++;
    }
  }
  return lines;
}

/** A turn as the async engine streams it: thinking and answer tokens alternating step by step. */
function interleavedTurn(): EngineEvent[] {
  const thinking = 'The user asks about the sky. Rayleigh scattering favours short wavelengths, so blue light scatters most.'.split(/(?<= )/);
  const answer = 'The sky looks blue because air scatters blue sunlight far more than red.'.split(/(?<= )/);
  const ev: EngineEvent[] = [{ type: 'state', from: 'listening', to: 'thinker_only', cause: 'turn-started', reason: 'turn started', step: 0, tMs: 0 }];
  for (let i = 0; i < Math.max(thinking.length, answer.length); i++) {
    if (thinking[i]) ev.push({ type: 'thinking', text: thinking[i], tokenId: 1, step: i, tMs: i });
    if (answer[i]) ev.push({ type: 'answer', text: answer[i], tokenId: 2, step: i, tMs: i });
  }
  return ev;
}

const joined = (lines: string[], label: string) =>
  lines
    .filter((l) => l.startsWith(label))
    .map((l) => l.slice(label.length))
    .join(' ');

describe('the terminal live view', () => {
  it('on a terminal, thinking and answer never share a line, and both read whole at every moment', () => {
    let out = '';
    const view = liveView({ write: (s) => (out += s), tty: true, columns: 40 });
    const events = interleavedTurn();
    for (const [i, e] of events.entries()) {
      view.observe(e);
      // Mid-turn, the screen is the finished lines above and one live line per stream below.
      const now = screen(out).filter(Boolean);
      expect(now.every((l) => /^(thinking │ |  answer │ |\[)/.test(l)), `after event ${i}:\n${now.join('\n')}`).toBe(true);
      // A stream line that wrapped on the terminal would break the redraw.
      expect(now.filter((l) => !l.startsWith('[')).every((l) => l.length < 40)).toBe(true);
    }
    view.settle();
    const lines = screen(out).filter(Boolean);
    expect(joined(lines, 'thinking │ ')).toBe('The user asks about the sky. Rayleigh scattering favours short wavelengths, so blue light scatters most.');
    expect(joined(lines, '  answer │ ')).toBe('The sky looks blue because air scatters blue sunlight far more than red.');
    expect(lines[0]).toBe('[state listening → thinker_only: turn started @ 0 ms]');
  });

  it('in a pipe, finished lines only, each labelled; --plain gives the answer alone', () => {
    let out = '';
    const view = liveView({ write: (s) => (out += s), tty: false, columns: 50 });
    for (const e of interleavedTurn()) view.observe(e);
    view.settle();
    expect(out).not.toMatch(/\x1b/);
    const lines = out.split('\n').filter(Boolean);
    expect(joined(lines, '  answer │ ')).toBe('The sky looks blue because air scatters blue sunlight far more than red.');
    let plain = '';
    const p = liveView({ write: (s) => (plain += s), tty: false, plain: true });
    for (const e of interleavedTurn()) p.observe(e);
    expect(plain).toBe('The sky looks blue because air scatters blue sunlight far more than red.');
  });

  it('model text cannot drive the terminal', () => {
    expect(printable('a\x1b]0;owned\x07b\x1b[2Jc\r\nd\te\u009b')).toBe('a]0;ownedb[2Jc\nd\te');
    const w = new LineWrapper(10);
    expect(w.push('one two three four')).toEqual(['one two']); // cut at the last space that fits
    expect(w.partial).toBe('three four');
    expect(w.push('x')).toEqual(['three']);
    expect(w.push('averyveryverylongword')).toEqual(['fourxavery', 'veryverylo']); // no space: cut at the width
    expect(w.flush()).toEqual(['ngword']);
    expect(w.partial).toBe('');
  });

  it('held output waits, in order, and comes out at once on release', () => {
    let out = '';
    const h = new HeldOutput((s) => (out += s));
    h.write('a');
    h.hold();
    h.write('b');
    h.write('c');
    expect(out).toBe('a');
    h.release();
    expect(out).toBe('abc');
    h.write('d');
    expect(out).toBe('abcd');
  });
});
