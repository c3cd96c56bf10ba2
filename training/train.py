"""Trains the shipped model: a small Qwen3-architecture decoder (RMSNorm, q/k norm, RoPE, GQA,
SwiGLU, tied embeddings), on the sequences training/generate.ts wrote, and exports it as a Hugging
Face model folder the runtime loads like any other.

usage: /usr/bin/python3 training/train.py --data DATA.bin --tokenizer DIR --out DIR --work DIR
       [--steps N] [--seed S] [--resume] [--init CKPT] [--probe-weight W] [--warmup N]

Checkpoints go to --work every few minutes (and at the end); --resume continues from the last one.
--init starts a later stage from an earlier stage's weights (its checkpoint or its exported folder),
with a new optimiser and schedule.
Samples that start with a standing prompt (the writer's or the thinker's system block, the same
tokens in every such sample) are batched by prompt, and the prompt is encoded once per batch: the
same sums as encoding it in every row, in about half the time.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPE = dict(hidden=256, layers=6, heads=4, kv_heads=2, head_dim=64, intermediate=768, rope_theta=10000.0, eps=1e-6)


# ───────────────────────────── the model ─────────────────────────────

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, pos, theta):
    # x: [B, h, T, D]; rotate-half RoPE as Hugging Face's Llama/Qwen models apply it.
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = pos.float()[:, None] * inv[None, :]  # [T, D/2]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        H, h, kv, D, I = s["hidden"], s["heads"], s["kv_heads"], s["head_dim"], s["intermediate"]
        self.s = s
        self.input_layernorm = RMSNorm(H, s["eps"])
        self.q_proj = nn.Linear(H, h * D, bias=False)
        self.k_proj = nn.Linear(H, kv * D, bias=False)
        self.v_proj = nn.Linear(H, kv * D, bias=False)
        self.o_proj = nn.Linear(h * D, H, bias=False)
        self.q_norm = RMSNorm(D, s["eps"])
        self.k_norm = RMSNorm(D, s["eps"])
        self.post_attention_layernorm = RMSNorm(H, s["eps"])
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x, pos, mask, past=None):
        """x [B, T, H] at positions pos [T]; past: (k, v) [1, kv, P, D] of a shared prefix every row sees."""
        s = self.s
        B, T, _ = x.shape
        h, kv, D = s["heads"], s["kv_heads"], s["head_dim"]
        y = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(y).view(B, T, h, D)).transpose(1, 2)
        k = self.k_norm(self.k_proj(y).view(B, T, kv, D)).transpose(1, 2)
        v = self.v_proj(y).view(B, T, kv, D).transpose(1, 2)
        q = rope(q, pos, s["rope_theta"])
        k = rope(k, pos, s["rope_theta"])
        kv_out = (k, v)
        if past is not None:
            k = torch.cat([past[0].expand(B, -1, -1, -1), k], 2)
            v = torch.cat([past[1].expand(B, -1, -1, -1), v], 2)
        k = k.repeat_interleave(h // kv, 1)
        v = v.repeat_interleave(h // kv, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, h * D)
        x = x + self.o_proj(o)
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y)), kv_out


class Model(nn.Module):
    def __init__(self, s, vocab):
        super().__init__()
        self.s = s
        self.embed_tokens = nn.Embedding(vocab, s["hidden"])
        self.layers = nn.ModuleList([Block(s) for _ in range(s["layers"])])
        self.norm = RMSNorm(s["hidden"], s["eps"])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        for b in self.layers:  # residual branches start small (GPT-2's scaled init)
            nn.init.normal_(b.o_proj.weight, std=0.02 / math.sqrt(2 * s["layers"]))
            nn.init.normal_(b.down_proj.weight, std=0.02 / math.sqrt(2 * s["layers"]))

    def forward(self, ids, pad_mask, prefix=None):
        """ids [B, T] (right-padded; pad_mask True where real), prefix [P] ids every row starts with (or None)."""
        B, T = ids.shape
        P = 0 if prefix is None else prefix.shape[0]
        pasts = [None] * len(self.layers)
        if P:
            x = self.embed_tokens(prefix)[None]
            pmask = torch.full((P, P), float("-inf")).triu(1)
            ppos = torch.arange(P)
            for i, layer in enumerate(self.layers):
                x, pasts[i] = layer(x, ppos, pmask)
        x = self.embed_tokens(ids)
        pos = torch.arange(P, P + T)
        causal = torch.full((T, T), float("-inf")).triu(1)
        mask = torch.cat([torch.zeros(T, P), causal], 1)[None, None]  # [1, 1, T, P+T]
        for i, layer in enumerate(self.layers):
            x, _ = layer(x, pos, mask, pasts[i])
        return self.norm(x) @ self.embed_tokens.weight.T


# ───────────────────────────── data ─────────────────────────────

def load(path):
    meta = json.load(open(path + ".json"))
    standing = {int(k): torch.tensor(v, dtype=torch.long) for k, v in meta["standing"].items()}
    data = open(path, "rb").read()
    samples, off = [], 0
    while off < len(data):
        n, kind = struct.unpack_from("<II", data, off)
        off += 8
        ids = torch.frombuffer(bytearray(data[off: off + 4 * n]), dtype=torch.int32).long()
        labels = torch.frombuffer(bytearray(data[off + 4 * n: off + 8 * n]), dtype=torch.int32).long()
        off += 8 * n
        if kind:
            p = standing[kind]
            assert torch.equal(ids[: len(p)], p), "a sample does not start with its standing prompt"
            assert (labels[: len(p) - 1] < 0).all()
            ids, labels = ids[len(p):], labels[len(p):]
            # The prompt's last position predicts nothing (a prompt is fixed text).
        samples.append((kind, ids, labels))
    return samples, standing, meta


def batches(samples, rng, max_tokens):
    """Batches of one standing prompt each, of similar lengths, at most max_tokens padded tokens."""
    order = list(range(len(samples)))
    rng.shuffle(order)
    out = []
    for c in range(0, len(order), 2048):
        chunk = sorted(order[c: c + 2048], key=lambda i: (samples[i][0], len(samples[i][1])))
        cur, kind, longest = [], None, 0
        for i in chunk:
            k, ids, _ = samples[i]
            L = max(longest, len(ids))
            if cur and (k != kind or L * (len(cur) + 1) > max_tokens):
                out.append(cur)
                cur, longest = [], 0
                L = len(ids)
            cur.append(i)
            kind, longest = k, L
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


def collate(samples, idx):
    T = max(len(samples[i][1]) for i in idx)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    labels = torch.full((len(idx), T), -100, dtype=torch.long)
    mask = torch.zeros(len(idx), T, dtype=torch.bool)
    for r, i in enumerate(idx):
        _, a, b = samples[i]
        ids[r, : len(a)] = a
        labels[r, : len(b)] = b
        mask[r, : len(a)] = True
    return samples[idx[0]][0], ids, labels, mask


# ───────────────────────────── export ─────────────────────────────

def export(model, vocab, tokenizer_dir, out, meta):
    import shutil

    os.makedirs(out, exist_ok=True)
    s = model.s
    tensors = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm.weight}
    for i, b in enumerate(model.layers):
        p = f"model.layers.{i}"
        for name, t in [
            ("input_layernorm.weight", b.input_layernorm.weight), ("post_attention_layernorm.weight", b.post_attention_layernorm.weight),
            ("self_attn.q_proj.weight", b.q_proj.weight), ("self_attn.k_proj.weight", b.k_proj.weight),
            ("self_attn.v_proj.weight", b.v_proj.weight), ("self_attn.o_proj.weight", b.o_proj.weight),
            ("self_attn.q_norm.weight", b.q_norm.weight), ("self_attn.k_norm.weight", b.k_norm.weight),
            ("mlp.gate_proj.weight", b.gate_proj.weight), ("mlp.up_proj.weight", b.up_proj.weight), ("mlp.down_proj.weight", b.down_proj.weight),
        ]:
            tensors[f"{p}.{name}"] = t
    # safetensors: 8-byte header length, JSON header, raw little-endian data.
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(a)]}
        blobs.append(a)
        off += len(a)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in blobs:
            f.write(a)
    tok = json.load(open(os.path.join(tokenizer_dir, "tokenizer.json")))
    im_end = tok["model"]["vocab"]["<|im_end|>"]
    eot = tok["model"]["vocab"]["<|endoftext|>"]
    config = {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": eot, "eos_token_id": im_end, "head_dim": s["head_dim"], "hidden_act": "silu", "hidden_size": s["hidden"],
        "initializer_range": 0.02, "intermediate_size": s["intermediate"], "max_position_embeddings": 2048,
        "max_window_layers": s["layers"], "num_attention_heads": s["heads"], "num_hidden_layers": s["layers"],
        "num_key_value_heads": s["kv_heads"], "rms_norm_eps": s["eps"], "rope_scaling": None, "rope_theta": s["rope_theta"],
        "sliding_window": None, "tie_word_embeddings": True, "torch_dtype": "float32", "use_cache": True,
        "use_sliding_window": False, "vocab_size": vocab,
    }
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    # Greedy: the thoughts are exact working, trained as one deterministic chain per problem;
    # sampling only adds slips (the engine reads this file for both streams' defaults).
    gen = {"bos_token_id": eot, "eos_token_id": [im_end, eot], "pad_token_id": eot, "do_sample": False}
    json.dump(gen, open(os.path.join(out, "generation_config.json"), "w"), indent=2)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(tokenizer_dir, f), os.path.join(out, f))


def read_folder(folder):
    """An exported model folder's weights as this model's state dict (export's names, reversed)."""
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    state = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        if h["dtype"] != "F32":
            raise SystemExit(f"--init {folder}: {name} is {h['dtype']}, not F32")
        lo, hi = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32).reshape(h["shape"])
        state[name.removeprefix("model.").replace("self_attn.", "").replace("mlp.", "")] = t
    return state


# ───────────────────────────── training ─────────────────────────────

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from these weights, a checkpoint or an exported model folder (a new optimiser and schedule): a later stage")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--probe-weight", type=float, default=1.0, help="loss weight of the control question's yes/no")
    ap.add_argument("--export-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.work, exist_ok=True)
    vocab = len(json.load(open(os.path.join(a.tokenizer, "tokenizer.json")))["model"]["vocab"])
    model = Model(SHAPE, vocab)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    ckpt = os.path.join(a.work, "checkpoint.pt")
    step, epoch, pos, elapsed = 0, 0, 0, 0.0
    if (a.resume or a.export_only) and os.path.exists(ckpt):
        c = torch.load(ckpt)
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        step, epoch, pos, elapsed = c["step"], c["epoch"], c["pos"], c["elapsed"]
        print(f"resumed at step {step} ({elapsed / 60:.1f} min)", flush=True)
    elif a.init:
        model.load_state_dict(read_folder(a.init) if os.path.isdir(a.init) else torch.load(a.init)["model"])
        print(f"starting from the weights in {a.init}", flush=True)
    if a.export_only:
        export(model, vocab, a.tokenizer, a.out, {})
        return
    samples, standing, meta = load(a.data)
    print(f"{len(samples)} samples, {n_params / 1e6:.2f} M parameters, {a.steps} steps", flush=True)

    def save():
        tmp = ckpt + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch, "pos": pos, "elapsed": elapsed}, tmp)
        os.replace(tmp, ckpt)

    warm = a.warmup
    probe = meta.get("probe")
    if a.probe_weight != 1.0 and not probe:
        raise SystemExit("--probe-weight: the data has no probe ids (regenerate it)")
    t_last_save = time.time()
    t0 = time.time() - elapsed
    plan = batches(samples, random.Random(a.seed * 1000 + epoch), a.batch_tokens)
    run_loss, run_n, run_tok = 0.0, 0, 0
    while step < a.steps:
        if pos >= len(plan):
            epoch += 1
            pos = 0
            plan = batches(samples, random.Random(a.seed * 1000 + epoch), a.batch_tokens)
        kind, ids, labels, mask = collate(samples, plan[pos])
        pos += 1
        lr = a.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / a.steps))))
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(ids, mask, standing[kind] if kind else None)
        flat = labels.view(-1)
        if a.probe_weight == 1.0:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), flat, ignore_index=-100)
        else:
            # The probe's answer is one token after hundreds of thoughts: weighted so that it counts.
            each = F.cross_entropy(logits.view(-1, logits.shape[-1]), flat, ignore_index=-100, reduction="none")
            is_probe = (ids.view(-1) == probe["after"]) & ((flat == probe["yes"]) | (flat == probe["no"]))
            w = (flat >= 0).float() * (1.0 + (a.probe_weight - 1.0) * is_probe.float())
            loss = (each * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss += loss.item()
        run_n += 1
        run_tok += int(mask.sum()) + (len(standing[kind]) if kind else 0)
        elapsed = time.time() - t0
        if step % 25 == 0 or step == a.steps:
            print(f"step {step}/{a.steps} epoch {epoch} loss {run_loss / run_n:.4f} lr {lr:.2e} {run_tok / max(1e-9, elapsed - (getattr(main, 'last_el', 0))):.0f} tok/s elapsed {elapsed / 60:.1f} min", flush=True)
            main.last_el = elapsed
            run_loss, run_n, run_tok = 0.0, 0, 0
        if time.time() - t_last_save > 300 or step == a.steps:
            save()
            t_last_save = time.time()
    export(model, vocab, a.tokenizer, a.out, meta)
    print(f"done: {step} steps in {elapsed / 60:.1f} min; exported to {a.out}", flush=True)


if __name__ == "__main__":
    main()
