#!/usr/bin/python3
"""ms per forward vs query rows, one curve per weight type (issue 7, docs/benchmarks.md).

A random LLaDA model (random weights: speed at a fixed shape does not depend on them):
f32 / bf16 via `unmask bench --random`, the GGUF types via bench/make_random_llada.py (a
BF16 folder) + `unmask quantize` + `unmask bench -m FILE.gguf`. Writes the rows to
OUT_DIR/forward_rows.jsonl and the plot to OUT_DIR/forward-rows.png (ms per forward, log-log,
and GFLOP/s, against query rows). Needs Debian's python3-matplotlib: run it with /usr/bin/python3.

  /usr/bin/python3 bench/plot_forward_rows.py --unmask build/unmask --out build-bench
"""
import argparse
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


SHAPE_KEYS = ("hidden", "layers", "heads", "ffn", "vocab")


def bench(unmask, model_args, rows, threads, repeat):
    cmd = [unmask, "bench", *model_args, "--tokens", ",".join(map(str, rows)), "--threads", str(threads),
           "--repeat", str(repeat), "--json"]
    print("plot_forward_rows: " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [j for j in map(json.loads, out.splitlines()) if j.get("what") == "forward"]


def gguf_of(unmask, spec, dtype, work):
    """The random model as a GGUF of `dtype` (folder made once, then quantized)."""
    folder = os.path.join(work, "model")
    if not os.path.exists(os.path.join(folder, "config.json")):
        shape = dict(kv.split("=") for kv in spec.split(":", 1)[1].split(","))
        args = [f"--{k}={shape[k]}" for k in SHAPE_KEYS if k in shape]
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "make_random_llada.py"), *args, folder], check=True)
    path = os.path.join(work, f"model-{dtype}.gguf")
    if not os.path.exists(path):
        subprocess.run([unmask, "quantize", folder, path, "--type", dtype], check=True)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unmask", default="build/unmask")
    ap.add_argument("--spec", default="llada:hidden=1024,layers=4,heads=16,ffn=2816,vocab=16384",
                    help="random model (unmask bench --random syntax, no dtype)")
    ap.add_argument("--types", default="f32,bf16,f16,q8_0,q4_0,q4_k,q6_k")
    ap.add_argument("--rows", default="1,8,32,128,384")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default="build-bench")
    a = ap.parse_args()
    rows = [int(r) for r in a.rows.split(",")]
    os.makedirs(a.out, exist_ok=True)
    results = {}
    with open(os.path.join(a.out, "forward_rows.jsonl"), "w") as log:
        for t in a.types.split(","):
            model_args = (["--random", f"{a.spec},dtype={t}"] if t in ("f32", "bf16")
                          else ["-m", gguf_of(a.unmask, a.spec, t, a.out)])
            results[t] = bench(a.unmask, model_args, rows, a.threads, a.repeat)
            for j in results[t]:
                log.write(json.dumps(j) + "\n")

    fig, (ax_ms, ax_rate) = plt.subplots(1, 2, figsize=(11, 4.5))
    for t, js in results.items():
        x = [j["query_tokens"] for j in js]
        ax_ms.plot(x, [j["ms_per_forward"] for j in js], marker="o", label=t)
        ax_rate.plot(x, [j["gflops_per_s"] for j in js], marker="o", label=t)
    ax_ms.set(xscale="log", yscale="log", xlabel="query rows per forward", ylabel="ms per forward",
              title="forward time")
    ax_rate.set(xscale="log", xlabel="query rows per forward", ylabel="GFLOP/s", title="achieved rate")
    for ax in (ax_ms, ax_rate):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"unmask, random {a.spec}, {a.threads} threads", fontsize=10)
    fig.tight_layout()
    png = os.path.join(a.out, "forward-rows.png")
    fig.savefig(png, dpi=110)
    print("| type | " + " | ".join(f"{r} rows ms (GFLOP/s)" for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for t, js in results.items():
        print(f"| {t} | " + " | ".join(f"{j['ms_per_forward']:.1f} ({j['gflops_per_s']:.0f})" for j in js) + " |")
    print(f"plot_forward_rows: wrote {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
