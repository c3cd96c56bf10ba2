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

/** Splits text into plain runs and math spans (by the delimiters above). */
export function splitMath(text: string): { math: boolean; text: string; raw: string }[] {
  const out: { math: boolean; text: string; raw: string }[] = [];
  let i = 0;
  let plain = '';
  while (i < text.length) {
    const d = MATH.find((m) => text.startsWith(m.open, i) && !(m.open === '$' && /\d/.test(text[i + 1] ?? '') && !text.slice(i + 1).includes('$')));
    if (d) {
      const end = text.indexOf(d.close, i + d.open.length);
      if (end > i + d.open.length) {
        if (plain) out.push({ math: false, text: plain, raw: plain });
        plain = '';
        out.push({ math: true, text: text.slice(i + d.open.length, end), raw: text.slice(i, end + d.close.length) });
        i = end + d.close.length;
        continue;
      }
    }
    plain += text[i++];
  }
  if (plain) out.push({ math: false, text: plain, raw: plain });
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
