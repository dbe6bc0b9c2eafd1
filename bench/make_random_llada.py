#!/usr/bin/env python3
"""Writes a LLaDA model folder (HF layout: config.json, model.safetensors in BF16, the
llada-tiny fixture's tokenizer) with seeded random weights, for speed comparisons where
only the shape matters. `unmask quantize FOLDER OUT.gguf --type f16|bf16|q8_0` turns it
into the GGUF both engines load (bench/vs_llamacpp.sh).

Weights: every BF16 value has a random sign and mantissa and an exponent fixed so that
|w| lies in [2^-6, 2^-5) (about 1/sqrt(2048), so activations keep their scale through a
2048-wide matmul); norm weights are 1. No NaN, inf or subnormal values, so no slow paths.
Only the Python standard library (random.Random(seed).randbytes is deterministic).

Usage: make_random_llada.py OUT_DIR [--hidden 2048 --layers 16 --heads 16 --ffn 5632
       --vocab 32768 --seed 1]
"""
import argparse
import json
import os
import random
import shutil
import struct

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "llada-tiny")

# Byte maps for little-endian BF16 (low byte: exponent LSB + 7 mantissa bits; high byte:
# sign + exponent's top 7 bits). Biased exponent 121 = 0b1111001 gives 2^-6 * (1 + m/128).
LOW_BYTE = bytes((b | 0x80) for b in range(256))
HIGH_BYTE = bytes(((b & 0x80) | 0x3C) for b in range(256))
BF16_ONE = struct.pack("<H", 0x3F80)


def random_bf16(rng, count):
    raw = rng.randbytes(2 * count)
    out = bytearray(2 * count)
    out[0::2] = raw[0::2].translate(LOW_BYTE)
    out[1::2] = raw[1::2].translate(HIGH_BYTE)
    return out


def tensor_list(a):
    """(name, shape, is_norm) in LLaDA's HF naming; shapes are [out, in]."""
    t = [("model.transformer.wte.weight", [a.vocab, a.hidden], False)]
    for i in range(a.layers):
        p = f"model.transformer.blocks.{i}."
        t += [
            (p + "attn_norm.weight", [a.hidden], True),
            (p + "q_proj.weight", [a.hidden, a.hidden], False),
            (p + "k_proj.weight", [a.hidden, a.hidden], False),
            (p + "v_proj.weight", [a.hidden, a.hidden], False),
            (p + "attn_out.weight", [a.hidden, a.hidden], False),
            (p + "ff_norm.weight", [a.hidden], True),
            (p + "ff_proj.weight", [a.ffn, a.hidden], False),
            (p + "up_proj.weight", [a.ffn, a.hidden], False),
            (p + "ff_out.weight", [a.hidden, a.ffn], False),
        ]
    t += [("model.transformer.ln_f.weight", [a.hidden], True),
          ("model.transformer.ff_out.weight", [a.vocab, a.hidden], False)]
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.hidden % a.heads:
        ap.error("--heads must divide --hidden")
    os.makedirs(a.out_dir, exist_ok=True)

    with open(os.path.join(FIXTURE, "config.json")) as f:
        config = json.load(f)
    config.update({"d_model": a.hidden, "n_heads": a.heads, "n_kv_heads": a.heads, "n_layers": a.layers,
                   "mlp_hidden_size": a.ffn, "vocab_size": a.vocab, "embedding_size": a.vocab,
                   "torch_dtype": "bfloat16"})
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(os.path.join(FIXTURE, name), os.path.join(a.out_dir, name))

    tensors = tensor_list(a)
    header, offset = {"__metadata__": {"format": "pt", "generator": "bench/make_random_llada.py",
                                       "seed": str(a.seed)}}, 0
    for name, shape, _ in tensors:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned
    rng = random.Random(a.seed)
    path = os.path.join(a.out_dir, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for name, shape, is_norm in tensors:
            n = 1
            for d in shape:
                n *= d
            f.write(BF16_ONE * n if is_norm else random_bf16(rng, n))
    os.replace(path + ".tmp", path)
    print(f"{a.out_dir}: {offset // 2} parameters, BF16, seed {a.seed}")


if __name__ == "__main__":
    main()
