/**
 * The task the shipped model is trained on: spoken arithmetic with checkable answers (sums and
 * differences to 999, times tables to 99 × 12, two-step word problems), a little small talk, and
 * honest refusals outside it. Each problem carries its question (digits or number words, typed or
 * as a recogniser writes it), its thoughts as short paragraphs, its spoken answer as sentences, and
 * for each sentence the paragraph after which the thoughts support it.
 *
 * Held out by construction: a problem's numbers decide its split (one pair in ten is never
 * trained on), and some phrasings are used for evaluation only.
 */

// ───────────────────────────── numbers ─────────────────────────────

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** 0–999 in words; `style` picks the variants people (and recognisers) use. */
export function numberWords(n: number, style: { and?: boolean; hyphen?: boolean; aHundred?: boolean } = {}): string {
  if (!Number.isInteger(n) || n < 0 || n > 999) throw new Error(`numberWords: ${n} is outside 0-999`);
  const below100 = (m: number) => (m < 20 ? ONES[m] : TENS[Math.floor(m / 10)] + (m % 10 ? (style.hyphen ? '-' : ' ') + ONES[m % 10] : ''));
  if (n < 100) return below100(n);
  const h = Math.floor(n / 100);
  const head = h === 1 && style.aHundred ? 'a hundred' : `${ONES[h]} hundred`;
  return n % 100 ? `${head}${style.and ? ' and' : ''} ${below100(n % 100)}` : head;
}

const WORD_VALUES: Record<string, number> = Object.fromEntries([...ONES.map((w, i) => [w, i]), ...TENS.map((w, i) => [w, i * 10]).filter(([w]) => w), ['oh', 0], ['a', 1]]);

/**
 * Every number in a spoken or written answer, in order: digits ("-283", "1,204") and number words
 * ("minus two hundred and eighty three"), as a recogniser or a writer gives them.
 */
export function numbersIn(text: string): number[] {
  const words = text.toLowerCase().replace(/(\d),(\d{3})/g, '$1$2').replace(/-(?=[a-z])/g, ' ').match(/-?\d+|[a-z']+/g) ?? [];
  const isNum = (k: number) => k < words.length && (/^-?\d/.test(words[k]) || (words[k] in WORD_VALUES && words[k] !== 'oh' && (words[k] !== 'a' || words[k + 1] === 'hundred')));
  const out: number[] = [];
  for (let i = 0; i < words.length; ) {
    let sign = 1;
    if ((words[i] === 'minus' || words[i] === 'negative') && isNum(i + 1)) {
      sign = -1;
      i++;
    }
    if (!isNum(i)) {
      i++;
      continue;
    }
    if (/^-?\d/.test(words[i])) {
      out.push(sign * Number(words[i++]));
      continue;
    }
    let current = 0;
    let total = 0;
    let any = false;
    for (; i < words.length; i++) {
      const w = words[i];
      const low = current % 100;
      if (w === 'hundred' && any && current > 0 && current < 10) current *= 100;
      else if (w === 'thousand' && any && current > 0) {
        total += current * 1000;
        current = 0;
      } else if (w === 'and' && any && current >= 100 && low === 0 && isNum(i + 1)) continue;
      else if (isNum(i) && !/^\d/.test(w)) {
        const v = WORD_VALUES[w];
        const joins = !any || (v < 10 ? (low === 0 && current + total > 0 && (current >= 100 || total > 0)) || (low >= 20 && low % 10 === 0) : low === 0 && (current >= 100 || (total > 0 && current === 0)));
        if (!joins) break;
        current += v;
      } else break;
      any = true;
    }
    out.push(sign * (total + current));
  }
  return out;
}

// ───────────────────────────── randomness and splits ─────────────────────────────

/** Small seeded generator (mulberry32): the same seed gives the same data on every machine. */
export class Rand {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

function hash(...xs: (number | string)[]): number {
  let h = 2166136261;
  for (const ch of xs.join('|')) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

export type Split = 'train' | 'eval';

/** One problem in ten, by its numbers, is held out: never trained on. */
export function splitOf(...key: (number | string)[]): Split {
  return hash(...key) % 10 === 0 ? 'eval' : 'train';
}

// ───────────────────────────── problems ─────────────────────────────

export type Kind = 'add' | 'sub' | 'mul' | 'story' | 'chat';

export interface Problem {
  kind: Kind;
  /** The user's words. */
  question: string;
  /** The numbers were said as words (a recogniser's text) rather than digits. */
  spoken: boolean;
  /** The right result, or null where there is none to check (small talk). */
  value: number | null;
  /** The thoughts, one paragraph each (joined by a blank line). */
  thoughts: string[];
  /** The spoken answer's sentences, each after the first starting with a space. */
  answer: string[];
  /** For each answer sentence, how many thought paragraphs must be complete before it may be said. */
  support: number[];
  /** Which phrasing made it (for reports) and whether that phrasing is held out. */
  template: string;
  split: Split;
}

type Op = 'add' | 'sub' | 'mul';
const SYMBOL: Record<Op, string> = { add: '+', sub: '-', mul: '×' };
const SAID: Record<Op, string> = { add: 'plus', sub: 'minus', mul: 'times' };

/**
 * Operands in the thoughts are written at a fixed width ("017", "304"): a digit's place then shows
 * from the digits before it, so a causal model can tell the tens digit of 17 as it reads the "1";
 * written "17" it cannot know it until the number ends. Column work that reads its operands from a
 * fixed-width line learns far faster on a model this small.
 */
export const WIDTH = { add: 3, sub: 3, mul: 2 } as const;
export const padded = (n: number, width: number) => String(n).padStart(width, '0');

/** The thoughts that work out `a op b` column by column; the last paragraph states the result. */
export function workings(op: Op, a: number, b: number): { paragraphs: string[]; value: number } {
  if (op === 'add') return columnAdd(a, b);
  if (op === 'sub') {
    if (a >= b) return columnSub(a, b);
    const inner = columnSub(b, a);
    return {
      paragraphs: [`${a} is less than ${b}, so I work out ${padded(b, 3)} - ${padded(a, 3)} and make it negative.`, ...inner.paragraphs.slice(0, -1), `So ${b} - ${a} = ${b - a}, and ${a} - ${b} = ${a - b}.`],
      value: a - b,
    };
  }
  if (b <= 9) return columnMul(a, b);
  const tens = a * 10;
  const low = columnMul(a, b - 10);
  return {
    paragraphs: [
      `${padded(a, 2)} × ${b} = ${a} × 10 + ${a} × ${b - 10}.`,
      `${a} × 10 = ${tens}.`,
      `Then ${padded(a, 2)} × ${b - 10}.`,
      ...low.paragraphs,
      `Now ${padded(tens, 3)} + ${padded(a * (b - 10), 3)}.`,
      ...columnAdd(tens, a * (b - 10)).paragraphs.slice(0, -1),
      `So ${a} × ${b} = ${tens} + ${a * (b - 10)} = ${a * b}.`,
    ],
    value: a * b,
  };
}

/** The line that states `a op b` at fixed width, right before its columns. */
export function stated(op: Op, a: number, b: number): string {
  return op === 'mul' ? `${padded(a, 2)} × ${b}` : `${padded(a, 3)} ${SYMBOL[op]} ${padded(b, 3)}`;
}

const PLACES = ['Ones', 'Tens', 'Hundreds', 'Thousands'];
const digits = (n: number, width: number) => padded(n, width).split('').reverse().map(Number);

function columnAdd(a: number, b: number, width = 3): { paragraphs: string[]; value: number } {
  const da = digits(a, width);
  const db = digits(b, width);
  const out: string[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const x = da[i] ?? 0;
    const y = db[i] ?? 0;
    const s = x + y + carry;
    out.push(`${PLACES[i]}: ${x} + ${y}${carry ? ' + 1' : ''} = ${s}${s >= 10 ? ', carry 1' : ''}.`);
    carry = s >= 10 ? 1 : 0;
  }
  if (carry) out.push(`${PLACES[Math.max(da.length, db.length)]}: 1.`);
  out.push(`So ${a} + ${b} = ${a + b}.`);
  return { paragraphs: out, value: a + b };
}

function columnSub(a: number, b: number): { paragraphs: string[]; value: number } {
  const da = digits(a, 3);
  const db = digits(b, 3);
  const out: string[] = [];
  let borrow = 0;
  for (let i = 0; i < da.length; i++) {
    const x = da[i];
    const y = db[i] ?? 0;
    const need = y + borrow;
    if (x >= need) out.push(`${PLACES[i]}: ${x} - ${y}${borrow ? ' - 1' : ''} = ${x - need}.`);
    else out.push(`${PLACES[i]}: ${x} - ${y}${borrow ? ' - 1' : ''} needs a borrow: 1${x} - ${need} = ${10 + x - need}.`);
    borrow = x >= need ? 0 : 1;
  }
  out.push(`So ${a} - ${b} = ${a - b}.`);
  return { paragraphs: out, value: a - b };
}

function columnMul(a: number, b: number): { paragraphs: string[]; value: number } {
  const da = digits(a, 2);
  const out: string[] = [];
  let carry = 0;
  for (let i = 0; i < da.length; i++) {
    const p = da[i] * b + carry;
    const last = i === da.length - 1;
    out.push(`${PLACES[i]}: ${da[i]} × ${b}${carry ? ` + ${carry}` : ''} = ${p}${!last && p >= 10 ? `, carry ${Math.floor(p / 10)}` : ''}.`);
    carry = Math.floor(p / 10);
  }
  out.push(`So ${a} × ${b} = ${a * b}.`);
  return { paragraphs: out, value: a * b };
}

/** How a result is said: "minus 283" rather than "-283", which a voice may read as a dash. */
export function spokenNumber(n: number): string {
  return n < 0 ? `minus ${-n}` : String(n);
}

interface Phrasing {
  id: string;
  /** Held out: used for evaluation only. */
  eval?: boolean;
  make: (a: string, b: string) => string;
}

/** Typed phrasings (digits, punctuation) and spoken ones (a recogniser's lower case, no punctuation). */
const PHRASINGS: Record<Op, { typed: Phrasing[]; spoken: Phrasing[] }> = {
  add: {
    typed: [
      { id: 'what-is', make: (a, b) => `What is ${a} plus ${b}?` },
      { id: 'whats-sym', make: (a, b) => `What's ${a} + ${b}?` },
      { id: 'add-and', make: (a, b) => `Add ${a} and ${b}.` },
      { id: 'bare', make: (a, b) => `${a} + ${b}` },
      { id: 'sum-of', make: (a, b) => `What is the sum of ${a} and ${b}?` },
      { id: 'how-much', eval: true, make: (a, b) => `How much is ${a} plus ${b}?` },
      { id: 'calc', eval: true, make: (a, b) => `Can you calculate ${a} + ${b}?` },
    ],
    spoken: [
      { id: 's-what-is', make: (a, b) => `what is ${a} plus ${b}` },
      { id: 's-whats', make: (a, b) => `what's ${a} plus ${b}` },
      { id: 's-add', make: (a, b) => `add ${a} and ${b}` },
      { id: 's-bare', make: (a, b) => `${a} plus ${b}` },
      { id: 's-tell', make: (a, b) => `tell me ${a} plus ${b}` },
      { id: 's-how-much', eval: true, make: (a, b) => `how much is ${a} plus ${b}` },
      { id: 's-could', eval: true, make: (a, b) => `could you work out ${a} plus ${b}` },
    ],
  },
  sub: {
    typed: [
      { id: 'what-is', make: (a, b) => `What is ${a} minus ${b}?` },
      { id: 'whats-sym', make: (a, b) => `What's ${a} - ${b}?` },
      { id: 'subtract-from', make: (a, b) => `Subtract ${b} from ${a}.` },
      { id: 'bare', make: (a, b) => `${a} - ${b}` },
      { id: 'take-away', make: (a, b) => `What is ${a} take away ${b}?` },
      { id: 'how-much', eval: true, make: (a, b) => `How much is ${a} minus ${b}?` },
      { id: 'calc', eval: true, make: (a, b) => `Can you calculate ${a} - ${b}?` },
    ],
    spoken: [
      { id: 's-what-is', make: (a, b) => `what is ${a} minus ${b}` },
      { id: 's-whats', make: (a, b) => `what's ${a} minus ${b}` },
      { id: 's-subtract', make: (a, b) => `subtract ${b} from ${a}` },
      { id: 's-bare', make: (a, b) => `${a} minus ${b}` },
      { id: 's-take-away', make: (a, b) => `what is ${a} take away ${b}` },
      { id: 's-how-much', eval: true, make: (a, b) => `how much is ${a} minus ${b}` },
      { id: 's-could', eval: true, make: (a, b) => `could you work out ${a} minus ${b}` },
    ],
  },
  mul: {
    typed: [
      { id: 'what-is', make: (a, b) => `What is ${a} times ${b}?` },
      { id: 'whats-sym', make: (a, b) => `What's ${a} x ${b}?` },
      { id: 'multiply', make: (a, b) => `Multiply ${a} by ${b}.` },
      { id: 'bare', make: (a, b) => `${a} * ${b}` },
      { id: 'product', make: (a, b) => `What is the product of ${a} and ${b}?` },
      { id: 'how-much', eval: true, make: (a, b) => `How much is ${a} times ${b}?` },
      { id: 'calc', eval: true, make: (a, b) => `Can you calculate ${a} × ${b}?` },
    ],
    spoken: [
      { id: 's-what-is', make: (a, b) => `what is ${a} times ${b}` },
      { id: 's-whats', make: (a, b) => `what's ${a} times ${b}` },
      { id: 's-multiply', make: (a, b) => `multiply ${a} by ${b}` },
      { id: 's-bare', make: (a, b) => `${a} times ${b}` },
      { id: 's-multiplied', make: (a, b) => `what is ${a} multiplied by ${b}` },
      { id: 's-how-much', eval: true, make: (a, b) => `how much is ${a} times ${b}` },
      { id: 's-could', eval: true, make: (a, b) => `could you work out ${a} times ${b}` },
    ],
  },
};

function sayNumber(r: Rand, n: number, spoken: boolean): string {
  if (!spoken) return String(n);
  return numberWords(n, { and: r.chance(0.5), hyphen: false, aHundred: r.chance(0.2) });
}

function opening(r: Rand, op: Op, a: number, b: number): string {
  return r.pick([`${a} ${SAID[op]} ${b}.`, `Let me work out ${a} ${SAID[op]} ${b}.`, `You asked for ${a} ${SAID[op]} ${b}.`]);
}

function closing(r: Rand, value: number): string {
  return r.pick([` The answer is ${spokenNumber(value)}.`, ` That makes ${spokenNumber(value)}.`, ` It comes to ${spokenNumber(value)}.`]);
}

export function arithmetic(r: Rand, op: Op, a: number, b: number, opts: { spoken: boolean; split: Split }): Problem {
  const pool = PHRASINGS[op][opts.spoken ? 'spoken' : 'typed'].filter((p) => (opts.split === 'eval' ? true : !p.eval));
  // Evaluation favours the held-out phrasings (half of its problems), the rest the trained ones with held-out numbers.
  const held = pool.filter((p) => p.eval);
  const phrasing = opts.split === 'eval' && r.chance(0.5) ? r.pick(held) : r.pick(pool.filter((p) => !p.eval));
  const question = phrasing.make(sayNumber(r, a, opts.spoken), sayNumber(r, b, opts.spoken));
  const w = workings(op, a, b);
  const thoughts = [`Question: ${stated(op, a, b)}.`, ...w.paragraphs];
  return {
    kind: op,
    question,
    spoken: opts.spoken,
    value: w.value,
    thoughts,
    answer: [opening(r, op, a, b), closing(r, w.value)],
    support: [1, thoughts.length],
    template: `${op}/${phrasing.id}`,
    split: opts.split,
  };
}

/** Draws an arithmetic problem of the wanted split, numbers by a mix of sizes. */
export function drawArithmetic(r: Rand, split: Split, spoken = r.chance(0.5), op: Op = r.pick(['add', 'sub', 'mul'] as const)): Problem {
  for (;;) {
    const size = (max: number) => {
      const d = r.next();
      return d < 0.15 ? r.int(0, Math.min(9, max)) : d < 0.4 ? r.int(0, Math.min(99, max)) : r.int(0, max);
    };
    const a = op === 'mul' ? size(99) : size(999);
    const b = op === 'mul' ? r.int(0, 12) : size(999);
    if (splitOf(op, a, b) !== split) continue;
    return arithmetic(r, op, a, b, { spoken, split });
  }
}

// ───────────────────────────── word problems ─────────────────────────────

const NAMES = ['Sam', 'Mia', 'Leo', 'Ava', 'Noah', 'Zoe', 'Omar', 'Lily', 'Ben', 'Ella', 'Raj', 'Nina'];
const EVAL_NAMES = ['Tom', 'Ivy', 'Max'];
const THINGS = ['marbles', 'apples', 'stickers', 'books', 'coins', 'cards', 'shells', 'pencils'];
const EVAL_THINGS = ['stamps', 'cookies'];
const GAINS = [
  (n: number) => `finds ${n} more`,
  (n: number) => `gets ${n} more`,
  (n: number) => `buys ${n} more`,
  (n: number) => `is given ${n} more`,
];
const LOSSES = [
  (n: number) => `gives away ${n}`,
  (n: number) => `loses ${n}`,
  (n: number) => `sells ${n}`,
  (n: number) => `gives ${n} to a friend`,
];
const HE = (name: string) => (['Mia', 'Ava', 'Zoe', 'Lily', 'Ella', 'Nina', 'Ivy'].includes(name) ? 'she' : 'he');

export function drawStory(r: Rand, split: Split, spoken = r.chance(0.5)): Problem {
  for (;;) {
    const start = r.int(1, 100);
    const s1 = r.chance(0.5) ? 1 : -1;
    const n1 = s1 > 0 ? r.int(1, 100) : r.int(1, start);
    const mid = start + s1 * n1;
    const s2 = r.chance(0.5) ? 1 : -1;
    if (s2 < 0 && mid < 1) continue;
    const n2 = s2 > 0 ? r.int(1, 100) : r.int(1, Math.min(100, mid));
    const end = mid + s2 * n2;
    if (splitOf('story', start, s1 * n1, s2 * n2) !== split) continue;
    const heldOut = split === 'eval' && r.chance(0.5);
    const name = r.pick(heldOut ? EVAL_NAMES : NAMES);
    const thing = r.pick(heldOut ? EVAL_THINGS : THINGS);
    const say = (n: number) => sayNumber(r, n, spoken);
    const act = (s: number, n: number) => (s > 0 ? r.pick(GAINS)(n) : r.pick(LOSSES)(n)).replace(String(n), say(n));
    const he = HE(name);
    const body = `${name} has ${say(start)} ${thing}, ${act(s1, n1)} and then ${act(s2, n2)}`;
    const question = spoken ? `${body} how many does ${he} have now`.replace(/,/g, '').toLowerCase() : `${body}. How many does ${he} have now?`;
    const step = (x: number, s: number, n: number) => (s > 0 ? columnAdd(x, n) : columnSub(x, n));
    const w1 = step(start, s1, n1);
    const w2 = step(mid, s2, n2);
    const sym = (s: number) => (s > 0 ? '+' : '-');
    const thoughts = [
      `Question: ${name} starts with ${start}, then ${sym(s1)}${n1}, then ${sym(s2)}${n2}.`,
      `First: ${padded(start, 3)} ${sym(s1)} ${padded(n1, 3)}.`,
      ...w1.paragraphs,
      `Then: ${padded(mid, 3)} ${sym(s2)} ${padded(n2, 3)}.`,
      ...w2.paragraphs,
      `${name} has ${end} ${thing} now.`,
    ];
    const verb = (s: number, n: number) => (s > 0 ? `getting ${n}` : `losing ${n}`);
    return {
      kind: 'story',
      question: question.replace(/^./, (c) => (spoken ? c.toLowerCase() : c.toUpperCase())),
      spoken,
      value: end,
      thoughts,
      answer: [`${name} starts with ${start} ${thing}.`, ` After ${verb(s1, n1)} and then ${verb(s2, n2)}, ${he} has ${end} ${thing} now.`],
      support: [1, thoughts.length],
      template: `story${heldOut ? '/held-out-names' : ''}`,
      split,
    };
  }
}

// ───────────────────────────── small talk and the rest ─────────────────────────────

interface Chat {
  says: string[];
  thought: string;
  answer: string[];
}

const CHATS: Chat[] = [
  { says: ['Hello!', 'Hi there.', 'hello', 'hi', 'hey there', 'Good morning!', 'good evening'], thought: 'The user greets me. I greet them back and offer help with arithmetic.', answer: ['Hello!', ' I can add, subtract and multiply for you.', ' What would you like to work out?'] },
  { says: ['Thanks!', 'Thank you.', 'thanks', 'thank you very much', 'cheers', 'great thanks'], thought: 'The user thanks me. A short, friendly reply.', answer: ["You're welcome!", ' Ask me another sum any time.'] },
  { says: ['Who are you?', 'What are you?', 'who are you', 'what can you do', 'What can you do?', 'tell me about yourself'], thought: 'The user asks who I am. I am a small voice assistant trained for spoken arithmetic.', answer: ["I'm a small voice assistant that thinks while it talks.", ' I can add and subtract numbers up to 999, multiply up to 99 times 12, and solve short word problems.'] },
  { says: ['Goodbye.', 'bye', 'see you later', 'Bye!', 'that is all'], thought: 'The user says goodbye.', answer: ['Goodbye!', ' Talk to you soon.'] },
  { says: ['How are you?', 'how are you', 'how are you doing', "How's it going?"], thought: 'The user asks how I am. I answer briefly and offer help.', answer: ["I'm doing well, thank you.", ' What would you like to calculate?'] },
];

const OFF_TOPIC = [
  'What is the capital of France?', 'what is the weather like today', 'Tell me a joke.', 'who won the football game', 'What time is it?', 'can you play some music',
  'Why is the sky blue?', 'what is the meaning of life', 'Write me a poem.', 'how do i cook rice', 'What is the square root of two?', 'what is seven divided by two',
  'Translate hello into French.', 'who is the president', 'Set an alarm for seven.', 'what is the biggest animal',
];
const EVAL_OFF_TOPIC = ['How tall is Mount Everest?', 'what is the speed of light', 'Recommend a good book.'];

export function drawChat(r: Rand, split: Split): Problem {
  if (r.chance(0.45)) {
    const q = r.pick(split === 'eval' ? EVAL_OFF_TOPIC : OFF_TOPIC);
    return {
      kind: 'chat',
      question: q,
      spoken: q === q.toLowerCase(),
      value: null,
      thoughts: ['The user asks something outside what I know. I only do arithmetic, so I say so honestly.'],
      answer: ["Sorry, I can't help with that.", ' I only know arithmetic: adding, subtracting and multiplying numbers.', ' Try asking me a sum.'],
      support: [1, 1, 1],
      template: 'off-topic',
      split,
    };
  }
  const c = r.pick(CHATS);
  return { kind: 'chat', question: r.pick(c.says), spoken: false, value: null, thoughts: [c.thought], answer: c.answer, support: c.answer.map(() => 1), template: 'chat', split };
}

/** Any problem of the split, in the training mix's proportions. */
/** `mulShare`: what share of arithmetic problems are products (the rest sums and differences, evenly); without it a third, drawn as stage 1's data was. */
export function drawProblem(r: Rand, split: Split, mulShare?: number): Problem {
  const d = r.next();
  if (d < 0.08) return drawChat(r, split);
  if (d < 0.26) return drawStory(r, split);
  if (mulShare === undefined) return drawArithmetic(r, split);
  const e = r.next();
  return drawArithmetic(r, split, r.chance(0.5), e < mulShare ? 'mul' : e < (1 + mulShare) / 2 ? 'add' : 'sub');
}

// ───────────────────────────── corrections and cut-off questions ─────────────────────────────

/**
 * The user changes the question: inline while speaking ("what is twelve plus five no plus six") or
 * afterwards (the engine's "user adds" marker). The thoughts may already be on the old question;
 * they note the correction and work the new one out.
 */
export function correction(r: Rand, split: Split): { first: Problem; fixed: Problem; said: string; inline: boolean; restated: string } {
  for (;;) {
    const op = r.pick(['add', 'sub', 'mul'] as const);
    const spoken = r.chance(0.6);
    const first = drawArithmetic(r, split, spoken, op);
    const [a, b] = first.thoughts[0].match(/\d+/g)!.map(Number);
    const b2 = op === 'mul' ? r.int(0, 12) : r.int(0, 999);
    if (b2 === b || splitOf(op, a, b2) !== split) continue;
    const fixed = arithmetic(r, op, a, b2, { spoken, split });
    const b2said = spoken ? numberWords(b2) : String(b2);
    const said = r.pick([`no, ${SAID[op]} ${b2said}`, `sorry, I mean ${SAID[op]} ${b2said}`, `actually make that ${b2said}`]);
    const inline = r.chance(0.5);
    fixed.thoughts = [`Correction: ${stated(op, a, b2)}.`, ...fixed.thoughts.slice(1)];
    return { first, fixed, said: spoken ? said.replace(/,/g, '').toLowerCase() : said, inline, restated: `${a} ${SAID[op]} ${b2}` };
  }
}

/** A question cut off mid-way (the user is still speaking): not yet anything to work out. */
export function cutOff(r: Rand, p: Problem): string | null {
  const words = p.question.split(' ');
  if (words.length < 3) return null;
  const keep = r.int(1, words.length - 2);
  const head = words.slice(0, keep).join(' ');
  // A head that is itself a whole question ("what is seventeen plus five" of "… fifty five") is not cut off.
  if (/\b(plus|minus|times|by|and|from|is|of|what's|what|away|has|then|more|gives|the|a|to)$/i.test(head)) return head;
  return null;
}

// ───────────────────────────── evaluation ─────────────────────────────

/**
 * The held-out evaluation set: `n` problems never trained on (their numbers are held out, half of
 * them in held-out phrasings), sums, differences, products and word problems in turn, digits and
 * number words alternating. The same seed gives the same set everywhere.
 */
export function evalProblems(n: number, seed = 2024): Problem[] {
  const r = new Rand(seed);
  const out: Problem[] = [];
  for (let i = 0; i < n; i++) {
    const spoken = i % 2 === 1;
    const kind = Math.floor(i / 2) % 4;
    out.push(kind === 3 ? drawStory(r, 'eval', spoken) : drawArithmetic(r, 'eval', spoken, (['add', 'sub', 'mul'] as const)[kind]));
  }
  return out;
}

/** Whether a spoken answer gives the problem's result: its last number is the right one. */
export function answersCorrectly(p: Pick<Problem, 'value'>, answer: string): boolean {
  const ns = numbersIn(answer);
  return p.value !== null && ns.length > 0 && ns[ns.length - 1] === p.value;
}
