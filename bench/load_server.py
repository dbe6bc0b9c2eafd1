#!/usr/bin/env python3
"""Load benchmark of `unmask serve`: N concurrent streaming chat clients.

Starts the server itself, once per mode -- batched (--parallel = the most clients) and
one-at-a-time (--parallel 1) -- and for each client count reports requests/s, completion
tokens/s, p50/p99 latency and p50/p99 time to first token (first streamed text).

  python3 bench/load_server.py --unmask build/unmask -m models/X --clients 1,8,32 --block-length 8
"""
import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time

PROMPTS = ["Explain how diffusion language models decode text.", "Write a short poem about the sea.",
           "List three uses of a paperclip.", "What is the capital of France and why?",
           "Describe a sunrise in two sentences.", "Give me a recipe for pancakes.",
           "Summarise the plot of a detective story.", "Why is the sky blue?"]


def start_server(args, parallel):
    cmd = [args.unmask, "serve", "-m", args.model, "--port", "0", "--parallel", str(parallel),
           "--max-queue", str(max(64, 2 * max(args.clients)))]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            # Keep draining the server's log so it never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(m.group(1))
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


def run_load(args, port, clients):
    results, errors, lock = [], [], threading.Lock()

    def client(i):
        for r in range(args.requests_per_client):
            body = {"model": args.name, "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": PROMPTS[(i + r) % len(PROMPTS)]}],
                    "max_tokens": args.max_tokens, "block_length": args.block_length, "cache": args.cache,
                    "temperature": 0}
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


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unmask", default="build/unmask")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--name", default=None, help="model id (default: the folder's name)")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--cache", default="dual")
    ap.add_argument("--modes", default="batched,serial")
    ap.add_argument("--threads", type=int, default=0, help="server compute threads (default: all cores)")
    args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.name = args.name or args.model.rstrip("/").split("/")[-1]
    print(f"# unmask serve load: {args.model}, max_tokens {args.max_tokens}, block {args.block_length}, "
          f"cache {args.cache}, {args.requests_per_client} requests per client")
    print(f"{'mode':8} {'clients':>7} {'req/s':>8} {'tok/s':>9} {'p50 lat':>8} {'p99 lat':>8} "
          f"{'p50 ttft':>9} {'p99 ttft':>9} {'errors':>6}")
    for mode in args.modes.split(","):
        parallel = max(args.clients) if mode == "batched" else 1
        proc, port = start_server(args, parallel)
        try:
            for n in args.clients:
                results, errors, wall = run_load(args, port, n)
                lat = [r[0] for r in results]
                ttft = [r[1] for r in results]
                tokens = sum(r[2] for r in results)
                print(f"{mode:8} {n:7d} {len(results) / wall:8.2f} {tokens / wall:9.1f} {pct(lat, 50):8.2f} "
                      f"{pct(lat, 99):8.2f} {pct(ttft, 50):9.2f} {pct(ttft, 99):9.2f} {len(errors):6d}", flush=True)
                for e in errors[:3]:
                    print("  error:", e, file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
