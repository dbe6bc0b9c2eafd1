#!/usr/bin/env python3
"""SVG plot of a cache-policy study: tokens/s (x) vs exact-match rate with no cache (y).

    python3 bench/plot_cache_policies.py build-study/summary.json out.svg

One curve per policy (its sweep points in order of speed), single points for none and
prefix. Written by hand: Python 3 standard library only.
"""
import json
import math
import sys

COLORS = {"none": "#555555", "prefix": "#8c564b", "dual": "#1f77b4", "window": "#2ca02c", "delayed": "#d62728"}
W, H = 760, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 40, 60


def nice_ticks(lo, hi, n=6):
    """About n round tick values covering [lo, hi]."""
    span = hi - lo if hi > lo else 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + 1e-9 * span:
        ticks.append(round(t, 10))
        t += step
    return ticks


def point_label(s):
    parts = []
    if s["policy"] in ("window", "delayed"):
        parts.append(f"w={s['refresh_window']}")
    if s["refresh_every"]:
        parts.append(f"every={s['refresh_every']}")
    return " ".join(parts)


def write_svg(summary, speed_key, path, title=""):
    xs = [s[speed_key] for s in summary]
    x_ticks = nice_ticks(0.0, max(xs) * 1.05)
    x_max = x_ticks[-1]
    y_ticks = [i / 10 for i in range(11)]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + pw * x / x_max

    def py(y):
        return TOP + ph * (1.0 - y)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="13">{title}</text>']
    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{TOP}" x2="{px(t):.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{px(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{t:g}</text>')
    for t in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + pw}" y2="{py(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:.1f}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    unit = "wall second" if speed_key == "tokens_per_s" else "CPU second"
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 18}" text-anchor="middle">generated tokens per {unit}</text>')
    out.append(f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {TOP + ph / 2})">exact-match rate with the no-cache output</text>')
    policies = []
    for s in summary:
        if s["policy"] not in policies:
            policies.append(s["policy"])
    for i, pol in enumerate(policies):
        color = COLORS.get(pol, "#000000")
        pts = sorted((s for s in summary if s["policy"] == pol), key=lambda s: s[speed_key])
        if len(pts) > 1:
            coords = " ".join(f"{px(s[speed_key]):.1f},{py(s['match_rate']):.1f}" for s in pts)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        for s in pts:
            x, y = px(s[speed_key]), py(s["match_rate"])
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>{s["config"]}: '
                       f'{s[speed_key]:.1f} tok/s, match {s["match_rate"]:.3f}</title></circle>')
            label = point_label(s)
            if label:
                out.append(f'<text x="{x + 5:.1f}" y="{y - 6:.1f}" font-size="9" fill="{color}">{label}</text>')
        ly = TOP + 16 + 20 * i
        out.append(f'<line x1="{LEFT + pw + 15}" y1="{ly - 4}" x2="{LEFT + pw + 35}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<circle cx="{LEFT + pw + 25}" cy="{ly - 4}" r="4" fill="{color}"/>')
        out.append(f'<text x="{LEFT + pw + 42}" y="{ly}">{pol}</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: plot_cache_policies.py SUMMARY.json OUT.svg")
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    key = "tokens_per_s" if data["meta"].get("speed", "wall") == "wall" else "tokens_per_cpu_s"
    m = data["meta"]
    title = (f"unmask-coder-tiny, {m['prompts']} held-out prompts, gen {m['gen_length']}, block {m['block_length']}, "
             f"T=0, {m['threads']} thread(s)")
    write_svg(data["configs"], key, sys.argv[2], title=title)


if __name__ == "__main__":
    main()
