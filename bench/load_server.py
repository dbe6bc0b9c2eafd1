#!/usr/bin/env python3
"""Load benchmark of `unmask serve`: N concurrent streaming chat clients.

Starts the server itself, once per (mode, block length): batched (--parallel = the most
clients) and one-at-a-time (--parallel 1). Each client sends its requests one after the
other; every request asks for exactly --max-tokens tokens ("ignore_eos": true, greedy),
so both modes generate the same tokens. For each client count it reports requests/s,
completion tokens/s, p50/p99 latency and p50/p99 time to first token (first streamed
text), the server's CPU seconds per second and completion tokens per server CPU second,
and with both modes the batched / one-at-a-time ratios. On a shared machine the wall-clock
figures depend on what else runs; tokens per CPU second much less (for --threads 1).

  python3 bench/load_server.py --sweep                  # the bench/README table, markdown
  python3 bench/load_server.py --clients 1,8 --block-length 8 --modes batched
  python3 bench/load_server.py -m models/X --cache dual --max-tokens 64

Without -m the server serves its default model (models/unmask-coder-tiny).
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

PROMPTS = ["Explain how diffusion language models decode text.", "Write a short poem about the sea.",
           "List three uses of a paperclip.", "What is the capital of France and why?",
           "Describe a sunrise in two sentences.", "Give me a recipe for pancakes.",
           "Summarise the plot of a detective story.", "Why is the sky blue?"]


def start_server(args, parallel):
    cmd = [args.unmask, "serve", "--port", "0", "--parallel", str(parallel),
           "--max-queue", str(max(64, 2 * max(args.clients)))]
    if args.model:
        cmd += ["-m", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            # Keep draining the server's log so it never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            port = int(m.group(1))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/v1/models")
            name = json.loads(conn.getresponse().read())["data"][0]["id"]
            conn.close()
            return proc, port, name
    raise SystemExit("unmask serve did not start: " + " ".join(cmd))


def one_request(port, body):
    """Streams one chat completion; returns (latency s, ttft s, completion tokens)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
    ttft, tokens = None, 0
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if "error" in chunk:
            raise RuntimeError(chunk["error"]["message"])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for c in chunk.get("choices", []):
            if ttft is None and c.get("delta", {}).get("content"):
                ttft = time.perf_counter() - t0
    conn.close()
    latency = time.perf_counter() - t0
    return latency, ttft if ttft is not None else latency, tokens


def run_load(args, port, name, clients, block_length):
    results, errors, lock = [], [], threading.Lock()

    def client(i):
        for r in range(args.requests_per_client):
            body = {"model": name, "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": PROMPTS[(i + r) % len(PROMPTS)]}],
                    "max_tokens": args.max_tokens, "block_length": block_length, "cache": args.cache,
                    "temperature": 0, "ignore_eos": True}
            try:
                out = one_request(port, body)
                with lock:
                    results.append(out)
            except Exception as e:  # reported below; the benchmark goes on
                with lock:
                    errors.append(str(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return results, errors, wall


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def measure(args, mode, block_length, on_row):
    parallel = max(args.clients) if mode == "batched" else 1
    proc, port, name = start_server(args, parallel)
    try:
        # One untimed request: first-touch page faults and thread start-up stay out of the figures.
        run_load(argparse.Namespace(**{**vars(args), "requests_per_client": 1}), port, name, 1, block_length)
        for n in args.clients:
            cpu0 = cpu_seconds(proc.pid)
            results, errors, wall = run_load(args, port, name, n, block_length)
            cpu = cpu_seconds(proc.pid) - cpu0
            lat = [r[0] for r in results]
            ttft = [r[1] for r in results]
            tokens = sum(r[2] for r in results)
            on_row({"mode": mode, "block": block_length, "clients": n, "requests": len(results),
                    "req_s": len(results) / wall, "tok_s": tokens / wall,
                    "tok_cpu_s": tokens / cpu if cpu > 0 else float("nan"), "server_cpu_util": cpu / wall,
                    "tokens_per_request": tokens / len(results) if results else 0,
                    "p50_lat": pct(lat, 50), "p99_lat": pct(lat, 99),
                    "p50_ttft": pct(ttft, 50), "p99_ttft": pct(ttft, 99), "errors": len(errors)})
            for e in errors[:3]:
                print("  error:", e, file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unmask", default="build/unmask")
    ap.add_argument("-m", "--model", default=None, help="model folder (default: the server's default model)")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests-per-client", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--block-length", default="8", help="one or more, comma-separated")
    ap.add_argument("--cache", default="dual")
    ap.add_argument("--modes", default="batched,serial")
    ap.add_argument("--threads", type=int, default=0, help="server compute threads (default: all cores)")
    ap.add_argument("--sweep", action="store_true",
                    help="the whole table: blocks 8,32 x clients 1,8,32 x batched/serial, as markdown")
    ap.add_argument("--json", action="store_true", help="also print one JSON object per measured row")
    args = ap.parse_args()
    if args.sweep:
        args.block_length, args.clients, args.modes = "8,32", "1,8,32", "batched,serial"
    args.clients = [int(c) for c in args.clients.split(",")]
    blocks = [int(b) for b in args.block_length.split(",")]
    modes = args.modes.split(",")

    rows = []

    def on_row(row):
        rows.append(row)
        print(f"  measured: {row['mode']} block {row['block']} clients {row['clients']}: "
              f"{row['tok_s']:.1f} tok/s", file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps(row), flush=True)

    for block in blocks:
        for mode in modes:
            measure(args, mode, block, on_row)

    load = os.getloadavg()
    print(f"\n`unmask serve` load: model {args.model or 'default (unmask-coder-tiny)'}, cache {args.cache}, "
          f"{args.max_tokens} tokens per request (ignore_eos, greedy), {args.requests_per_client} requests per client, "
          f"server threads {args.threads or 'all'}; load average after the run {load[0]:.2f} {load[1]:.2f}\n")
    print("| block | clients | mode | req/s | tok/s | p50 latency s | p99 latency s | p50 TTFT s | p99 TTFT s | "
          "tokens/req | errors | server CPU s/s | tok per CPU s | batched / serial: tok/s, tok per CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    by_key = {(r["block"], r["clients"], r["mode"]): r for r in rows}
    for r in sorted(rows, key=lambda r: (r["block"], r["clients"], modes.index(r["mode"]))):
        serial = by_key.get((r["block"], r["clients"], "serial"))
        ratio = ""
        if r["mode"] == "batched" and serial and serial["tok_s"] and serial["tok_cpu_s"]:
            ratio = f"{r['tok_s'] / serial['tok_s']:.2f}x, {r['tok_cpu_s'] / serial['tok_cpu_s']:.2f}x"
        print(f"| {r['block']} | {r['clients']} | {r['mode']} | {r['req_s']:.2f} | {r['tok_s']:.1f} | "
              f"{r['p50_lat']:.3f} | {r['p99_lat']:.3f} | {r['p50_ttft']:.3f} | {r['p99_ttft']:.3f} | "
              f"{r['tokens_per_request']:.1f} | {r['errors']} | {r['server_cpu_util']:.2f} | {r['tok_cpu_s']:.0f} | "
              f"{ratio} |")


if __name__ == "__main__":
    main()
