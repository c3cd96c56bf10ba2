import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { ModelSourceError } from '../../errors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Qwen3: false makes the template pre-fill an empty <think></think>. */
  enableThinking?: boolean;
}

type HfTokenizer = {
  encode(text: string, opts?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], opts?: { skip_special_tokens?: boolean }): string;
};

/**
 * The model folder's own tokenizer (tokenizer.json through transformers.js, never fetched from
 * the network) and chat template (tokenizer_config.json through @huggingface/jinja).
 */
export class Tokenizer {
  private template: Template | null;

  private constructor(
    private readonly tok: HfTokenizer,
    private readonly config: Record<string, unknown>,
    private readonly vocab: Map<string, number>,
    /** Added tokens (`<|im_end|>`, `<think>`, …), longest first. */
    private readonly addedTokens: string[],
  ) {
    const tpl = config.chat_template;
    const source = typeof tpl === 'string' ? tpl : Array.isArray(tpl) ? (tpl.find((t) => t?.name === 'default')?.template as string | undefined) : undefined;
    this.template = source ? new Template(source) : null;
  }

  static async fromFolder(dir: string): Promise<Tokenizer> {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!existsSync(join(dir, f))) throw new ModelSourceError(`${dir} has no ${f}; the model's own tokenizer is required`);
    }
    let json: Record<string, unknown>;
    let config: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
      config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    } catch (e) {
      throw new ModelSourceError(`tokenizer files in ${dir} are not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    const { AutoTokenizer, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = '';
    const tok = (await AutoTokenizer.from_pretrained(dir, { local_files_only: true })) as unknown as HfTokenizer;
    const vocab = new Map<string, number>();
    const model = json.model as { vocab?: Record<string, number> } | undefined;
    if (model?.vocab && !Array.isArray(model.vocab)) for (const [k, v] of Object.entries(model.vocab)) vocab.set(k, v);
    const added = (json.added_tokens as { content: string; id: number }[] | undefined) ?? [];
    for (const t of added) vocab.set(t.content, t.id);
    const addedTokens = added.map((t) => t.content).filter((c) => c.length > 1).sort((a, b) => b.length - a.length);
    return new Tokenizer(tok, config, vocab, addedTokens);
  }

  /** Plain text → ids; special-token text such as `<think>` maps to its single id. */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false });
  }

  /**
   * Text from outside (the user, speech recognition, the model's own public answer fed back):
   * strings that spell a control token, such as "<|im_end|>", are encoded as ordinary text, so
   * nobody can close a turn or open a thought by saying or typing it.
   */
  encodeText(text: string): number[] {
    const ids: number[] = [];
    let rest = text;
    while (rest.length) {
      let cut = -1;
      for (const t of this.addedTokens) {
        const i = rest.indexOf(t);
        if (i >= 0 && (cut < 0 || i < cut)) cut = i;
      }
      if (cut < 0) {
        ids.push(...this.tok.encode(rest, { add_special_tokens: false }));
        break;
      }
      // Encode the control string in two halves, neither of which is an added token.
      const head = rest.slice(0, cut + 1);
      if (head) ids.push(...this.tok.encode(head, { add_special_tokens: false }));
      rest = rest.slice(cut + 1);
    }
    return ids;
  }

  decode(ids: number[], skipSpecial = false): string {
    if (!ids.length) return '';
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial });
  }

  /** Id of a token given by its exact text (special or vocabulary entry), or undefined. */
  tokenId(text: string): number | undefined {
    return this.vocab.get(text);
  }

  get eosToken(): string | undefined {
    const e = this.config.eos_token;
    return typeof e === 'string' ? e : (e as { content?: string } | undefined)?.content;
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.template) throw new ModelSourceError('this model has no chat_template in tokenizer_config.json');
    const special = (k: string) => {
      const v = this.config[k];
      return typeof v === 'string' ? v : (v as { content?: string } | null | undefined)?.content ?? '';
    };
    return this.template.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      enable_thinking: opts.enableThinking ?? true,
      bos_token: special('bos_token'),
      eos_token: special('eos_token'),
    });
  }
}
