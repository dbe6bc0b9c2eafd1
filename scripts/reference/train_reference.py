#!/usr/bin/python3
"""PyTorch reference of unmask's trainer (src/train): the llada model, the masked-diffusion
loss, its gradients and ten AdamW steps, for tests/test_train_reference.cpp.

Offline only: run it with Debian's python3-torch (`apt-get install python3-torch
libopenblas0-pthread`, then `/usr/bin/python3 scripts/reference/train_reference.py`).
The tests read the committed files and need no torch.

Writes tests/data/train-ref/:
  reference.json       model shape, batch shape, objective and optimizer settings
  weights.safetensors  initial weights (HF llada names), f32
  batch.safetensors    tokens [B, L] i32, mask [B, L] i32 (1 = masked), t [B] f32,
                       logits [B*L, V] f32, loss [1] f32, adam_losses [steps] f32,
                       grad_norms [steps] f32
  grads.safetensors    d loss / d weight for every tensor, f32
Everything is computed in float64 and stored as float32, so the reference carries no
float32 rounding of its own.

`--bench` instead times a full training step (forward, backward, AdamW) of the tiny and
small presets in float32 on 1 and 2 threads and prints tokens/s.
"""
import argparse
import json
import math
import os
import struct
import time

import numpy as np
import torch

EPS = 1e-3  # p = (1 - EPS) t + EPS


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}[arr.dtype]
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def param_names(layers):
    p = "model.transformer."
    names = [p + "wte.weight"]
    for i in range(layers):
        b = f"{p}blocks.{i}."
        names += [b + n + ".weight" for n in
                  ("attn_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_norm", "ff_proj", "up_proj", "ff_out")]
    return names + [p + "ln_f.weight", p + "ff_out.weight"]


def make_weights(cfg, gen, dtype):
    d, f, v = cfg["hidden"], cfg["ffn"], cfg["vocab"]
    shapes = {"wte": (v, d), "attn_norm": (d,), "q_proj": (d, d), "k_proj": (d, d), "v_proj": (d, d),
              "attn_out": (d, d), "ff_norm": (d,), "ff_proj": (f, d), "up_proj": (f, d), "ln_f": (d,)}
    w = {}
    for name in param_names(cfg["layers"]):
        key = name.split(".")[-2]
        shape = (v, d) if name.endswith("transformer.ff_out.weight") else ((d, f) if key == "ff_out" else shapes[key])
        if len(shape) == 1:  # norm weights around 1, so their gradients are exercised
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:  # 1/sqrt(fan_in) keeps activations O(1): gradients of every block are non-trivial
            t = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[1])
        w[name] = t.to(dtype)
    return w


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):  # x [B, L, H, hd], NeoX half split
    L, hd = x.shape[1], x.shape[3]
    inv_freq = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=x.dtype) / hd)
    ang = torch.arange(L, dtype=x.dtype)[:, None] * inv_freq[None, :]
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def forward(w, cfg, inp):
    p = "model.transformer."
    B, L = inp.shape
    d, H = cfg["hidden"], cfg["heads"]
    hd = d // H
    x = w[p + "wte.weight"][inp]
    for i in range(cfg["layers"]):
        b = f"{p}blocks.{i}."
        h = rms_norm(x, w[b + "attn_norm.weight"], cfg["rms_eps"])
        q = rope((h @ w[b + "q_proj.weight"].T).view(B, L, H, hd), cfg["rope_theta"]).transpose(1, 2)
        k = rope((h @ w[b + "k_proj.weight"].T).view(B, L, H, hd), cfg["rope_theta"]).transpose(1, 2)
        v = (h @ w[b + "v_proj.weight"].T).view(B, L, H, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1) @ v  # bidirectional
        x = x + att.transpose(1, 2).reshape(B, L, d) @ w[b + "attn_out.weight"].T
        h2 = rms_norm(x, w[b + "ff_norm.weight"], cfg["rms_eps"])
        s = torch.nn.functional.silu(h2 @ w[b + "ff_proj.weight"].T) * (h2 @ w[b + "up_proj.weight"].T)
        x = x + s @ w[b + "ff_out.weight"].T
    hf = rms_norm(x, w[p + "ln_f.weight"], cfg["rms_eps"])
    return hf @ w[p + "ff_out.weight"].T  # [B, L, V]


def masked_loss(logits, tokens, mask, t):
    B, L, V = logits.shape
    p = (1 - EPS) * t + EPS
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tokens.reshape(-1), reduction="none").view(B, L)
    return (ce * mask / p[:, None]).sum() / (B * L)


def learning_rate(step, peak, min_ratio, warmup, total):  # as train/optimizer.cpp
    if step < warmup:
        return peak * (step + 1) / warmup
    span = total - 1 - warmup
    progress = min(1.0, (step - warmup) / span) if span > 0 else 1.0
    lo = peak * min_ratio
    return lo + 0.5 * (peak - lo) * (1 + math.cos(math.pi * progress))


def make_optimizer(w, cfg):
    decay = [t for t in w.values() if t.dim() == 2]
    no_decay = [t for t in w.values() if t.dim() == 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"])


def generate(out_dir):
    cfg = {"hidden": 48, "layers": 2, "heads": 4, "ffn": 80, "vocab": 67, "rope_theta": 10000.0,
           "rms_eps": 1e-5, "batch": 3, "seq_len": 13, "mask_id": 66, "eps": EPS,
           "lr": 1e-2, "min_lr_ratio": 0.1, "warmup": 3, "steps": 10, "beta1": 0.9, "beta2": 0.95,
           "adam_eps": 1e-8, "weight_decay": 0.1, "clip": 1.0}
    gen = torch.Generator().manual_seed(1234)
    B, L, V = cfg["batch"], cfg["seq_len"], cfg["vocab"]
    w = make_weights(cfg, gen, torch.float64)
    tokens = torch.randint(0, V - 1, (B, L), generator=gen)
    # stratified t, one per stratum of (0, 1], as train/data.cpp draws them
    u = torch.rand((), generator=gen, dtype=torch.float64)
    t = ((torch.arange(B, dtype=torch.float64) + 1 - u) / B).to(torch.float32).to(torch.float64)
    p = (1 - EPS) * t + EPS
    mask = (torch.rand((B, L), generator=gen, dtype=torch.float64) < p[:, None]).to(torch.float64)
    mask[:, 0] = 1.0  # every sequence scores at least one position
    inp = torch.where(mask.bool(), torch.full_like(tokens, cfg["mask_id"]), tokens)

    init = {k: v.detach().to(torch.float32).numpy() for k, v in w.items()}
    params = {k: v.clone().requires_grad_(True) for k, v in w.items()}
    logits = forward(params, cfg, inp)
    loss = masked_loss(logits, tokens, mask, t)
    loss.backward()
    grads = {k: v.grad.detach().to(torch.float32).numpy() for k, v in params.items()}

    opt_params = {k: v.clone().requires_grad_(True) for k, v in w.items()}
    opt = make_optimizer(opt_params, cfg)
    losses, norms = [], []
    for step in range(cfg["steps"]):
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, cfg["lr"], cfg["min_lr_ratio"], cfg["warmup"], cfg["steps"])
        opt.zero_grad()
        step_loss = masked_loss(forward(opt_params, cfg, inp), tokens, mask, t)
        step_loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(opt_params.values()), cfg["clip"])))
        opt.step()
        losses.append(float(step_loss))

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out_dir, "weights.safetensors"), init)
    write_safetensors(os.path.join(out_dir, "grads.safetensors"), grads)
    write_safetensors(os.path.join(out_dir, "batch.safetensors"), {
        "tokens": tokens.to(torch.int32).numpy(), "mask": mask.to(torch.int32).numpy(),
        "t": t.to(torch.float32).numpy(),
        "logits": logits.detach().reshape(B * L, V).to(torch.float32).numpy(),
        "loss": np.array([float(loss)], dtype=np.float32),
        "adam_losses": np.array(losses, dtype=np.float32), "grad_norms": np.array(norms, dtype=np.float32)})
    print(f"loss {float(loss):.6f}; adam losses {['%.5f' % x for x in losses]} -> {out_dir}")


def loaded_blas():  # the BLAS library torch actually mapped (Debian picks it via alternatives)
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    return ", ".join(sorted(os.path.basename(x) for x in libs)) or "none"


def bench(preset, threads, batch, seq_len, vocab, steps):
    sizes = {"tiny": (128, 2, 2, 384), "small": (256, 4, 4, 768), "medium": (512, 8, 8, 1536)}  # as preset_shape() in src/train/model.cpp
    d, layers, heads, ffn = sizes[preset]
    cfg = {"hidden": d, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab, "rope_theta": 10000.0,
           "rms_eps": 1e-5, "lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8, "weight_decay": 0.1}
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    w = {k: v.requires_grad_(True) for k, v in make_weights(cfg, gen, torch.float32).items()}
    opt = make_optimizer(w, cfg)
    tokens = torch.randint(0, vocab - 1, (batch, seq_len), generator=gen)
    t = (torch.arange(batch, dtype=torch.float32) + 0.5) / batch
    mask = (torch.rand((batch, seq_len), generator=gen) < ((1 - EPS) * t + EPS)[:, None]).float()
    inp = torch.where(mask.bool(), torch.full_like(tokens, vocab - 1), tokens)
    times, cpu_times = [], []
    for _ in range(steps + 2):  # two warm-up steps
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        masked_loss(forward(w, cfg, inp), tokens, mask, t).backward()
        torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        cpu_times.append((time.process_time() - c0) / threads)  # as unmask's cpu_* figures
    best, best_cpu = min(times[2:]), min(cpu_times[2:])
    print(json.dumps({"preset": preset, "threads": threads, "batch": batch, "seq_len": seq_len, "vocab": vocab,
                      "tokens_per_s": batch * seq_len / best, "step_s": best,
                      "cpu_tokens_per_s": batch * seq_len / best_cpu,
                      "blas": loaded_blas()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/data/train-ref"))
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    if a.bench:
        bench(a.preset, a.threads, a.batch, a.seq_len, a.vocab, a.steps)
    else:
        torch.set_num_threads(1)
        generate(os.path.normpath(a.out))


if __name__ == "__main__":
    main()
