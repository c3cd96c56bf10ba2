/**
 * Prompt sets for asynchronous reasoning, kept as data: one per chat format. The wording is ours;
 * the block layout follows the method (see docs/architecture.md, "Asynchronous reasoning"):
 *
 *   writer view:  [writerSystem, history, userHead, userInput, writerTail, thinkerOutput, writerSplit, writerOutput]
 *   thinker view: [thinkerSystem, history, userHead, userInput, thinkerTail, writerOutput, thinkerSplit, thinkerOutput]
 *   control view: thinker view + [controlQuestion]
 *
 * The system blocks are encoded once per conversation, not per turn: a turn only pays for the
 * user's words and a few short separators before the thinker starts.
 */
export interface PromptSet {
  name: string;
  /** Each stream's standing instructions, first in its views (with any BOS the family needs). */
  writerSystem: string;
  thinkerSystem: string;
  /** What baselines (one plain stream) start with: the family's BOS, or nothing. */
  plainSystem: string;
  /** Opens the user's turn; shared by both streams so the user's words are encoded once. */
  userHead: string;
  /** After the user's words, in the writer's view; may be empty (the thinker's output prefix closes the turn). */
  writerTail: string;
  /** After the user's words, in the thinker's view; opens the assistant turn that holds the answer. */
  thinkerTail: string;
  /** Between the thoughts and the answer, in the writer's view. */
  writerSplit: string;
  /** Between the answer and the thoughts, in the thinker's view. */
  thinkerSplit: string;
  /** The thinker's output starts with this (closes the turn, opens thinking). */
  thinkerOutputPrefix: string;
  /** The writer's first token (fed, never sampled) so its first step sees the latest thoughts. */
  writerOutputStart: string;
  /** Asked after the thinker's latest token; its answer's next token is "yes" or "no". */
  controlQuestion: string;
  yesWords: string[];
  noWords: string[];
  /** Text appended to the user's block for words that arrive after the user finished speaking. */
  userAdds: (text: string) => string;
  /** Text appended to the user's block when the user talks over the answer. */
  userInterrupts: (text: string) => string;
  /** Appended to the answer where the listener cut it off. */
  writerInterrupted: string;
  /** Closes a finished exchange in the shared history. */
  historyTurn: (user: string, assistant: string) => string;
  /** Baselines: what follows the user's words to start thinking, or to skip it. */
  thinkTail: string;
  noThinkTail: string;
  /** Forced in when thinking runs out of budget. */
  endThinking: string;
  thinkEnd: string;
  answerEnd: string[];
  /** Never sampled by the writer / the thinker. */
  writerForbidden: string[];
  thinkerForbidden: string[];
}

const SHARED_THINKER_DUTIES =
  'You are the private reasoning of a voice assistant that thinks and speaks at the same time. ' +
  'Nobody hears your thoughts: a separate speaker turns them into the spoken answer, which appears above your thoughts and keeps growing while you think. ' +
  'Think step by step, in short paragraphs, about the user\'s latest message. From time to time you will be asked whether your thoughts are far enough ahead of the spoken answer for it to say its next sentence: ' +
  'answer yes when they are, no when you need to think further first. Give the speaker something true to say early, keep checking the answer so far against your reasoning, ' +
  'and if the user adds or corrects something, take it into account at once.';

const SAFETY_THINKER_DUTIES =
  'You are the private reasoning of a voice assistant that thinks and speaks at the same time. ' +
  'Nobody hears your thoughts: a separate speaker turns them into the spoken answer, which appears above your thoughts and keeps growing while you think. ' +
  'First decide, explicitly, whether the request is safe, legal and harmless to answer. If it is not, decide to decline and say yes at once when asked, so the speaker can decline politely. ' +
  'If it is, reason step by step in short paragraphs. When asked whether your thoughts are far enough ahead of the spoken answer for its next sentence, answer yes or no. ' +
  'Never let the speaker say anything your reasoning has not cleared.';

const WRITER_DUTIES =
  'You are the voice of an assistant whose private reasoning runs in parallel; its thoughts so far are below. ' +
  'Speak the answer in plain conversational sentences (no markdown, no lists, no symbols that cannot be read aloud), ' +
  'say only what the thoughts already support, and end with a short, clear conclusion.';

const SAFETY_WRITER_DUTIES =
  'You are the voice of an assistant whose private reasoning runs in parallel; its thoughts so far are below. ' +
  'Say nothing the reasoning has not yet judged safe. Speak in plain conversational sentences and end with a short, clear conclusion, or decline politely if the reasoning decided to.';

/** What every family says the same way (our markers are plain text, not control tokens). */
const COMMON = {
  writerSplit: '\n(Further private thoughts continue here while the answer is spoken.)\n</think>',
  thinkerSplit: '\n(The spoken answer continues here while you think.)',
  writerOutputStart: '\n\n',
  // Ends where the model answers: its next token is " yes" or " no" (a word with its space), the
  // spelling every tokenizer makes after a colon.
  controlQuestion: '\n\nHold on: are my thoughts far enough ahead of the spoken answer for it to say its next sentence? Answer yes or no:',
  yesWords: ['yes', 'Yes', ' yes', ' Yes'],
  noWords: ['no', 'No', ' no', ' No'],
  userAdds: (t: string) => `\n\n(The user adds: ${t})`,
  userInterrupts: (t: string) => `\n\n(The user interrupts the answer: ${t})`,
  writerInterrupted: ' (interrupted by the user)\n\n',
  endThinking: '\n</think>\n\n',
  thinkEnd: '</think>',
} satisfies Partial<PromptSet>;

function chatml(safety: boolean): PromptSet {
  return {
    ...COMMON,
    name: safety ? 'chatml-safety' : 'chatml',
    writerSystem: `<|im_start|>system\n${safety ? SAFETY_WRITER_DUTIES : WRITER_DUTIES}<|im_end|>\n`,
    thinkerSystem: `<|im_start|>system\n${safety ? SAFETY_THINKER_DUTIES : SHARED_THINKER_DUTIES}<|im_end|>\n`,
    plainSystem: '',
    userHead: '<|im_start|>user\n',
    writerTail: '',
    thinkerTail: '<|im_end|>\n<|im_start|>assistant\n',
    thinkerOutputPrefix: '<|im_end|>\n<|im_start|>assistant\n<think>\n',
    historyTurn: (u, a) => `<|im_start|>user\n${u}<|im_end|>\n<|im_start|>assistant\n${a}<|im_end|>\n`,
    thinkTail: '<|im_end|>\n<|im_start|>assistant\n<think>\n',
    noThinkTail: '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    answerEnd: ['<|im_end|>', '<|endoftext|>'],
    writerForbidden: ['<|im_start|>', '<think>', '</think>', '<|endoftext|>', '<tool_call>'],
    thinkerForbidden: ['<|im_start|>', '<|im_end|>', '<think>', '<|endoftext|>', '<tool_call>'],
  };
}

function deepseekR1(safety: boolean): PromptSet {
  return {
    ...COMMON,
    name: safety ? 'deepseek-r1-safety' : 'deepseek-r1',
    // R1 distills are tuned without a system role: the duties lead the conversation as plain text.
    writerSystem: `<｜begin▁of▁sentence｜>${safety ? SAFETY_WRITER_DUTIES : WRITER_DUTIES}\n\n`,
    thinkerSystem: `<｜begin▁of▁sentence｜>${safety ? SAFETY_THINKER_DUTIES : SHARED_THINKER_DUTIES}\n\n`,
    plainSystem: '<｜begin▁of▁sentence｜>',
    userHead: '<｜User｜>',
    writerTail: '',
    thinkerTail: '<｜Assistant｜>',
    thinkerOutputPrefix: '<｜Assistant｜><think>\n',
    historyTurn: (u, a) => `<｜User｜>${u}<｜Assistant｜>${a}<｜end▁of▁sentence｜>`,
    thinkTail: '<｜Assistant｜><think>\n',
    noThinkTail: '<｜Assistant｜><think>\n\n</think>\n\n',
    answerEnd: ['<｜end▁of▁sentence｜>'],
    writerForbidden: ['<｜User｜>', '<｜Assistant｜>', '<think>', '</think>'],
    thinkerForbidden: ['<｜User｜>', '<｜Assistant｜>', '<think>', '<｜end▁of▁sentence｜>'],
  };
}

/** Picks the prompt set for a tokenizer's chat format, from its control tokens. */
export function promptSetFor(hasToken: (t: string) => boolean, opts: { safety?: boolean } = {}): PromptSet {
  const safety = opts.safety ?? false;
  if (hasToken('<｜User｜>') && hasToken('<｜Assistant｜>')) return deepseekR1(safety);
  if (hasToken('<|im_start|>') && hasToken('<|im_end|>')) return chatml(safety);
  throw new Error('no asynchronous-reasoning prompt set for this chat format (supported: ChatML/Qwen, DeepSeek-R1)');
}
