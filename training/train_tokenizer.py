"""Trains the shipped model's tokenizer (SentencePiece BPE with byte fallback, digits split) on the
generated corpus and writes it as a Hugging Face tokenizer.json + tokenizer_config.json, the files
the runtime loads for any model.

usage: /usr/bin/python3 training/train_tokenizer.py CORPUS.txt OUT_DIR [--vocab N]
"""
import json
import os
import sys

import sentencepiece as spm

# Control tokens of the ChatML format with thinking (what the engine's prompt set uses).
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# A blank line is one token, as in the big models' vocabularies: the engine's paragraph test and
# its fed paragraph break are one step each.
EXTRA = ["\n\n"]

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}"
    "{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- else %}"
    "{{- '<think>\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    vocab = int(sys.argv[sys.argv.index("--vocab") + 1]) if "--vocab" in sys.argv else 1024
    os.makedirs(out, exist_ok=True)
    prefix = os.path.join(out, "spm")
    spm.SentencePieceTrainer.train(
        input=corpus,
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab - len(EXTRA),
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        user_defined_symbols=SPECIAL,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=2,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab_map = {p: i for i, p in enumerate(pieces)}
    for e in EXTRA:
        vocab_map[e] = len(vocab_map)
    # BPE merges from the pieces, ranked by the merged piece's id (SentencePiece's merge order).
    merges = []
    for i, p in enumerate(pieces):
        if sp.is_unknown(i) or sp.is_byte(i) or p in SPECIAL or len(p) < 2:
            continue
        for k in range(1, len(p)):
            l, r = p[:k], p[k:]
            if l in vocab_map and r in vocab_map:
                merges.append((i, vocab_map[l], vocab_map[r], l, r))
    merges.sort()
    added = [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}]
    for t in SPECIAL + EXTRA:
        added.append({"id": vocab_map[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": t not in ("<think>", "</think>") and t not in EXTRA})
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab_map, "merges": [f"{l} {r}" for _, _, _, l, r in merges]},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 2048,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<unk>",
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    os.remove(prefix + ".model")
    os.remove(prefix + ".vocab")
    print(json.dumps({"vocab": len(vocab_map), "merges": len(merges)}))


if __name__ == "__main__":
    main()
