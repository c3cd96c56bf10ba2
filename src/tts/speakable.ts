import temml from 'temml';

/** Math delimiters we recognise, longest first. */
const MATH = [
  { open: '$$', close: '$$' },
  { open: '\\[', close: '\\]' },
  { open: '\\(', close: '\\)' },
  { open: '$', close: '$' },
];

type Sre = { setupEngine(o: Record<string, string>): Promise<void>; engineReady(): Promise<void>; toSpeech(mml: string): string };
let sre: Sre | null = null;

/** Loads speech-rule-engine (ClearSpeak, English) once; needed before `speakable` reads formulas. */
export async function loadMathSpeech(): Promise<void> {
  if (sre) return;
  const mod = (await import('speech-rule-engine')) as unknown as { default?: Sre } & Sre;
  const engine = mod.default ?? mod;
  await engine.setupEngine({ domain: 'clearspeak', locale: 'en', modality: 'speech' });
  await engine.engineReady();
  sre = engine;
}

/** LaTeX → MathML (temml) → words (speech-rule-engine, ClearSpeak), as the paper read formulas. */
export function speakLatex(latex: string): string {
  if (!sre) throw new Error('call loadMathSpeech() first');
  try {
    return sre.toSpeech(temml.renderToString(latex, { xml: true, throwOnError: true }));
  } catch {
    // Not valid LaTeX: say its symbols rather than nothing.
    return latex.replace(/\\([a-zA-Z]+)/g, ' $1 ').replace(/[{}^_]/g, ' ').replace(/\s+/g, ' ').trim();
  }
}

/**
 * Math spans of a text, by the delimiters above, and where an opened formula has not closed yet
 * (-1 if none): text streams in, so a formula may still be arriving.
 */
export function mathRanges(text: string): { ranges: [number, number][]; openAt: number } {
  const ranges: [number, number][] = [];
  let i = 0;
  while (i < text.length) {
    // A lone "$" before a number with no closing "$" later is money, not math.
    const d = MATH.find((m) => text.startsWith(m.open, i) && !(m.open === '$' && /\d/.test(text[i + 1] ?? '') && !text.slice(i + 1).includes('$')));
    if (!d) {
      i++;
      continue;
    }
    const end = text.indexOf(d.close, i + d.open.length);
    if (end < 0) return { ranges, openAt: i };
    if (end === i + d.open.length) {
      i += d.open.length; // empty pair: not a formula
      continue;
    }
    ranges.push([i, end + d.close.length]);
    i = end + d.close.length;
  }
  return { ranges, openAt: -1 };
}

/** Splits text into plain runs and math spans (an unclosed formula counts as plain text). */
export function splitMath(text: string): { math: boolean; text: string; raw: string }[] {
  const out: { math: boolean; text: string; raw: string }[] = [];
  let at = 0;
  for (const [a, b] of mathRanges(text).ranges) {
    if (a > at) out.push({ math: false, text: text.slice(at, a), raw: text.slice(at, a) });
    const raw = text.slice(a, b);
    const d = MATH.find((m) => raw.startsWith(m.open) && raw.endsWith(m.close))!;
    out.push({ math: true, text: raw.slice(d.open.length, raw.length - d.close.length), raw });
    at = b;
  }
  if (at < text.length) out.push({ math: false, text: text.slice(at), raw: text.slice(at) });
  return out;
}

const UNITS: Record<string, string> = {
  km: 'kilometres', m: 'metres', cm: 'centimetres', mm: 'millimetres', kg: 'kilograms', g: 'grams', mg: 'milligrams',
  l: 'litres', ml: 'millilitres', s: 'seconds', ms: 'milliseconds', h: 'hours', min: 'minutes', Hz: 'hertz', kHz: 'kilohertz',
  MHz: 'megahertz', GHz: 'gigahertz', W: 'watts', kW: 'kilowatts', V: 'volts', A: 'amps', mph: 'miles per hour',
  'km/h': 'kilometres per hour', 'm/s': 'metres per second', GB: 'gigabytes', MB: 'megabytes', KB: 'kilobytes', TB: 'terabytes',
};

/** Markdown out, numbers with units and symbols into words. */
export function speakPlain(text: string): string {
  let t = text
    .replace(/```[\s\S]*?```/g, ' ')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}#{1,6}\s+/gm, '')
    .replace(/^\s*[-*+]\s+/gm, '')
    .replace(/^\s*\d+[.)]\s+/gm, '')
    .replace(/^\s*>\s?/gm, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(\*|_)(\S(?:.*?\S)?)\1/g, '$2')
    .replace(/~~(.+?)~~/g, '$1')
    .replace(/^\s*([-*_]\s*){3,}$/gm, ' ')
    .replace(/\|/g, ' ');
  t = t.replace(/(\d+(?:[.,]\d+)?)\s?%/g, '$1 percent');
  t = t.replace(/(\d+(?:[.,]\d+)?)\s?°\s?C\b/g, '$1 degrees Celsius').replace(/(\d+(?:[.,]\d+)?)\s?°\s?F\b/g, '$1 degrees Fahrenheit');
  t = t.replace(/(\d+(?:[.,]\d+)?)\s?(km\/h|m\/s|[kKMGT]?Hz|km|cm|mm|kg|mg|ml|mph|min|ms|GB|MB|KB|TB|kW|m|g|l|s|h|W|V|A)\b/g, (_, n, u) => `${n} ${UNITS[u] ?? u}`);
  t = t.replace(/&/g, ' and ').replace(/\s*=\s*/g, ' equals ').replace(/(\d)\s*\+\s*(\d)/g, '$1 plus $2').replace(/(\d)\s*[×x*]\s*(\d)/g, '$1 times $2');
  return t.replace(/\s+/g, ' ').trim();
}

/** What a chunk of answer text should sound like: markdown dropped, formulas read as words. */
export function speakable(text: string): string {
  return splitMath(text)
    .map((p) => (p.math ? ` ${speakLatex(p.text)} ` : speakPlain(p.text)))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}
