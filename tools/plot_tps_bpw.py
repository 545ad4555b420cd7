#!/usr/bin/env python3
"""Scatter plot (SVG, no dependencies) of decode tokens/s against bits per weight.

usage: plot_tps_bpw.py RESULTS.csv OUT.svg [TITLE]

RESULTS.csv columns: engine,shape,type,threads,bpw,tg_tps  (one row per measurement).
One marker per row; colour by engine, shape by model shape, labelled with the type and
thread count. Written for docs/PERF.md's Sherry section (tools/sherry_bench.py makes the CSV).
"""
import csv
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "decode tokens/s vs bits per weight"
    rows = list(csv.DictReader(open(src)))
    if not rows:
        sys.exit("no rows")
    w, h, ml, mr, mt, mb = 760, 480, 70, 200, 40, 50
    xs = [float(r["bpw"]) for r in rows]
    ys = [float(r["tg_tps"]) for r in rows]
    x0, x1 = min(xs) - 0.1, max(xs) + 0.1
    y0, y1 = 0.0, max(ys) * 1.1
    px = lambda x: ml + (x - x0) / (x1 - x0) * (w - ml - mr)
    py = lambda y: h - mb - (y - y0) / (y1 - y0) * (h - mt - mb)
    colours = {"tern": "#1f77b4", "bitnet.cpp": "#d62728"}
    shapes = sorted({r["shape"] for r in rows})
    marks = ["circle", "square", "diamond"]
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">']
    o.append(f'<rect width="{w}" height="{h}" fill="white"/>')
    o.append(f'<text x="{w/2}" y="20" text-anchor="middle" font-size="14">{title}</text>')
    o.append(f'<line x1="{ml}" y1="{h-mb}" x2="{w-mr}" y2="{h-mb}" stroke="black"/>')
    o.append(f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{h-mb}" stroke="black"/>')
    for i in range(6):
        xv = x0 + (x1 - x0) * i / 5
        yv = y0 + (y1 - y0) * i / 5
        o.append(f'<text x="{px(xv):.1f}" y="{h-mb+15}" text-anchor="middle">{xv:.2f}</text>')
        o.append(f'<text x="{ml-5}" y="{py(yv)+4:.1f}" text-anchor="end">{yv:.1f}</text>')
        o.append(f'<line x1="{ml}" y1="{py(yv):.1f}" x2="{w-mr}" y2="{py(yv):.1f}" stroke="#eee"/>')
    o.append(f'<text x="{(ml+w-mr)/2}" y="{h-12}" text-anchor="middle">bits per weight (file, ternary tensors)</text>')
    o.append(f'<text x="15" y="{(mt+h-mb)/2}" transform="rotate(-90 15 {(mt+h-mb)/2})" text-anchor="middle">decode tokens/s (tg128)</text>')
    for r in rows:
        x, y = px(float(r["bpw"])), py(float(r["tg_tps"]))
        c = colours.get(r["engine"], "#2ca02c")
        m = marks[shapes.index(r["shape"]) % 3]
        if m == "circle":
            o.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{c}"/>')
        elif m == "square":
            o.append(f'<rect x="{x-5:.1f}" y="{y-5:.1f}" width="10" height="10" fill="{c}"/>')
        else:
            o.append(f'<polygon points="{x:.1f},{y-6:.1f} {x+6:.1f},{y:.1f} {x:.1f},{y+6:.1f} {x-6:.1f},{y:.1f}" fill="{c}"/>')
        o.append(f'<text x="{x+7:.1f}" y="{y-6:.1f}" font-size="9">{r["type"]} t{r["threads"]}</text>')
    ly = mt + 10
    for e, c in colours.items():
        o.append(f'<circle cx="{w-mr+20}" cy="{ly}" r="5" fill="{c}"/><text x="{w-mr+30}" y="{ly+4}">{e}</text>')
        ly += 18
    for i, s in enumerate(shapes):
        o.append(f'<text x="{w-mr+15}" y="{ly+4}">{["●", "■", "◆"][i % 3]} {s}</text>')
        ly += 18
    o.append("</svg>")
    open(out, "w").write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
