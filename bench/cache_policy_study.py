#!/usr/bin/env python3
"""KV-cache policy study on the shipped default model (issue 4 item 2, docs/cache-policies.md).

Decodes N code prompts from the held-out corpus split greedily (temperature 0) under every
cache configuration and compares each output with the no-cache output of the same prompt:

    python3 bench/cache_policy_study.py                  # all defaults, writes build-study/

One `unmask bench --prompts-file` process runs every configuration on a prompt before the
next prompt, so load changes on a shared machine hit all configurations alike. Writes to
--out: prompts.jsonl (the prompts), runs.jsonl (one bench row per prompt x configuration),
summary.csv / summary.json (per configuration), cache-policies.svg (bench/plot_cache_policies.py)
and prints the comparison of our policy with dual cache. Python 3 standard library only.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
import plot_cache_policies  # noqa: E402  (same folder)

# Each policy's sweep: the refresh period R (a full forward every R steps of a block) for
# dual and for ours (delayed), the refresh window W for window. The no-cache run is the
# reference and comes first.
DEFAULT_CONFIGS = ("none,prefix,dual,dual:every=16,dual:every=8,dual:every=6,dual:every=4,"
                   "window:w=4,window:w=16,"
                   "delayed:w=0,delayed:w=0:every=16,delayed:w=0:every=8,delayed:w=0:every=6,delayed:w=0:every=4")
OURS = ("delayed", "window")


def select_prompts(heldout_path, count, context_lines, body_lines, max_chars):
    """Deterministic prompts: `count` function starts spread evenly over the held-out text.

    A prompt is the `context_lines` lines before a `def` line, the def line and the
    function's next `body_lines` lines, leading lines dropped while it exceeds max_chars.
    """
    with open(heldout_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    defs = [i for i, line in enumerate(lines) if line.lstrip().startswith("def ")]
    if len(defs) < count:
        raise SystemExit(f"study: {heldout_path} has {len(defs)} def lines, fewer than --prompts {count}")
    prompts = []
    for k in range(count):
        i = defs[(k * len(defs)) // count]
        chunk = lines[max(0, i - context_lines):i + 1 + body_lines]
        while len(chunk) > 1 and len("\n".join(chunk)) > max_chars:
            chunk = chunk[1:]
        prompts.append("\n".join(chunk) + "\n")
    return prompts


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def summarize(rows):
    """Per configuration, in first-seen order: totals over prompts and the match rates."""
    by = {}
    for r in rows:
        s = by.setdefault(r["config"], {"config": r["config"], "policy": r["cache"],
                                        "refresh_window": r["refresh_window"], "refresh_every": r["refresh_every"],
                                        "prompts": 0, "tokens": 0, "seconds": 0.0, "cpu_seconds": 0.0,
                                        "forwards": 0, "rows": 0.0, "matches": 0, "agree": 0.0})
        tokens = r["gen_length"] * r["batch"]
        s["prompts"] += 1
        s["tokens"] += tokens
        s["seconds"] += r["seconds"]
        s["cpu_seconds"] += r["cpu_seconds"]
        s["forwards"] += r["steps"]
        s["rows"] += r["query_tokens_per_forward"] * r["steps"]
        s["matches"] += bool(r["matches_no_cache"])
        s["agree"] += r["agree_no_cache"] if r["agree_no_cache"] is not None else 0.0
    out = []
    for s in by.values():
        n = s["prompts"]
        out.append({"config": s["config"], "policy": s["policy"], "refresh_window": s["refresh_window"],
                    "refresh_every": s["refresh_every"], "prompts": n,
                    "tokens_per_s": s["tokens"] / s["seconds"],
                    "tokens_per_cpu_s": s["tokens"] / s["cpu_seconds"],
                    "forwards_per_token": s["forwards"] / s["tokens"],
                    "rows_per_token": s["rows"] / s["tokens"],
                    "match_rate": s["matches"] / n, "token_agreement": s["agree"] / n})
    return out


def compare_with_dual(summary, speed_key):
    """For each dual point: our best match rate at >= its speed, our best speed at >= its match rate."""
    lines = []
    ours = [s for s in summary if s["policy"] in OURS]
    verdict = False
    for d in (s for s in summary if s["policy"] == "dual"):
        faster = [o for o in ours if o[speed_key] >= d[speed_key]]
        best_match = max(faster, key=lambda o: (o["match_rate"], o[speed_key]), default=None)
        as_good = [o for o in ours if o["match_rate"] >= d["match_rate"]]
        best_speed = max(as_good, key=lambda o: o[speed_key], default=None)
        ratio = best_speed[speed_key] / d[speed_key] if best_speed else 0.0
        higher = best_match is not None and best_match["match_rate"] > d["match_rate"]
        verdict = verdict or higher or ratio >= 1.3
        lines.append(f"  vs {d['config']:<16} ({d[speed_key]:7.1f} tok/s, match {d['match_rate']:.3f}): "
                     + (f"at >= its speed best match {best_match['match_rate']:.3f} ({best_match['config']})"
                        if best_match else "no point of ours is as fast")
                     + "; "
                     + (f"at >= its match best speed {ratio:.2f}x ({best_speed['config']})"
                        if best_speed else "no point of ours matches as often"))
    return verdict, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--unmask", default=os.path.join(REPO, "build", "unmask"), help="unmask binary (build/unmask)")
    ap.add_argument("--model", default=os.path.join(REPO, "models", "unmask-coder-tiny"))
    ap.add_argument("--heldout", default=os.path.join(REPO, "build-corpus", "heldout.txt"),
                    help="held-out text; made by scripts/corpus.sh when missing")
    ap.add_argument("--prompts", type=int, default=60, help="number of prompts (>= 50 for the issue's criterion)")
    ap.add_argument("--context-lines", type=int, default=12)
    ap.add_argument("--body-lines", type=int, default=2)
    ap.add_argument("--max-chars", type=int, default=480, help="prompt length cap in characters (~130 tokens)")
    ap.add_argument("--gen-length", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--threshold", type=float, default=None,
                    help="threshold commit rule (default: one token per step, top-n)")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="unmask bench --cache list")
    ap.add_argument("--threads", type=int, default=1, help="bench threads (1: least disturbed by other load)")
    ap.add_argument("--speed", choices=("wall", "cpu"), default="wall",
                    help="x axis / comparison: generated tokens per wall second, or per CPU second")
    ap.add_argument("--out", default=os.path.join(REPO, "build-study"))
    args = ap.parse_args()

    if not os.path.exists(args.heldout):
        subprocess.run(["bash", os.path.join(REPO, "scripts", "corpus.sh"), os.path.dirname(args.heldout)], check=True)
    if not os.access(args.unmask, os.X_OK):
        raise SystemExit(f"study: no unmask binary at {args.unmask} (bash scripts/build.sh, or --unmask PATH)")
    os.makedirs(args.out, exist_ok=True)
    prompts = select_prompts(args.heldout, args.prompts, args.context_lines, args.body_lines, args.max_chars)
    prompts_path = os.path.join(args.out, "prompts.jsonl")
    with open(prompts_path, "w", encoding="utf-8") as f:
        for p in prompts:
            f.write(json.dumps(p) + "\n")

    cmd = [args.unmask, "bench", "-m", args.model, "--prompts-file", prompts_path, "--gen-length",
           str(args.gen_length), "--block-length", str(args.block_length), "--cache", args.configs,
           "--threads", str(args.threads), "--json"]
    if args.threshold is not None:
        cmd += ["--threshold", str(args.threshold)]
    load_before = load_average()
    started = time.time()
    print("study: " + " ".join(cmd), file=sys.stderr)
    rows = []
    runs_path = os.path.join(args.out, "runs.jsonl")
    with open(runs_path, "w", encoding="utf-8") as runs, \
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        for line in proc.stdout:
            row = json.loads(line)
            rows.append(row)
            runs.write(line)
            if row["cache"] == "none":
                print(f"study: prompt {row['prompt_index'] + 1}/{len(prompts)} "
                      f"({time.time() - started:.0f} s)", file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"study: unmask bench exited with {proc.returncode}")
    load_after = load_average()

    summary = summarize(rows)
    speed_key = "tokens_per_s" if args.speed == "wall" else "tokens_per_cpu_s"
    meta = {"command": cmd, "prompts": len(prompts), "gen_length": args.gen_length,
            "block_length": args.block_length, "threshold": args.threshold, "threads": args.threads,
            "load_average_before": load_before, "load_average_after": load_after,
            "wall_seconds": time.time() - started, "speed": args.speed}
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "configs": summary}, f, indent=1)
    with open(os.path.join(args.out, "summary.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0].keys()))
        w.writeheader()
        w.writerows(summary)
    svg = os.path.join(args.out, "cache-policies.svg")
    plot_cache_policies.write_svg(summary, speed_key, svg, title=(
        f"unmask-coder-tiny, {len(prompts)} held-out prompts, gen {args.gen_length}, block {args.block_length}, "
        f"T=0, {args.threads} thread(s)"))

    print(f"{'config':<22} {'tok/s':>8} {'tok/cpu-s':>9} {'fwd/tok':>8} {'rows/tok':>9} {'match':>6} {'agree':>6}")
    for s in summary:
        print(f"{s['config']:<22} {s['tokens_per_s']:8.1f} {s['tokens_per_cpu_s']:9.1f} "
              f"{s['forwards_per_token']:8.3f} {s['rows_per_token']:9.1f} {s['match_rate']:6.3f} "
              f"{s['token_agreement']:6.3f}")
    verdict, lines = compare_with_dual(summary, speed_key)
    print(f"ours ({', '.join(OURS)}) vs dual, by {args.speed} tokens/s:")
    print("\n".join(lines))
    print("criterion met: " + ("yes" if verdict else "no"))
    print(f"load average before {load_before}, after {load_after}; outputs in {args.out}")


if __name__ == "__main__":
    main()
