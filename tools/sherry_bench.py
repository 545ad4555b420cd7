#!/usr/bin/env python3
"""Sherry benchmark (docs/PERF.md, "Sherry"): the same 3:4 ternary weights stored as SHERRY,
STQ1_0, TL2 and I2_S, run by tern and by bitnet.cpp (its I2_S build and, per shape, its TL2
build), alternating: every round runs every (engine, file) once, so machine noise spreads over
all of them. Prints a markdown table with mean ± sample sd over the rounds and the ratios the
issue asks for, writes results.json / results.csv and the tokens/s-vs-bits plot.

usage: tools/sherry_bench.py OUTDIR [--shapes large,3b,2b4t] [--rounds 2] [--threads 1,2]
           [--tern target/release/tern] [--bitnet-i2s /work/bitnet-build]
           [--bitnet-tl2 large=/work/bitnet-tl2-large,3b=/work/bitnet-tl2-3B]
           [-p 128] [-n 128] [--svg docs/sherry_tps_bpw.svg]

Files are made once in OUTDIR (`tern synth --type sherry`, then `tern quantize` to the
other types; a type whose conversion fails, e.g. TL2 for a shape without a preset, is
skipped and said). bitnet.cpp's TL2 build is used for decode (tg) only: its batched TL2 path
computes wrong results (docs/FORMATS.md), so a prefill speed of it would not mean anything.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

TERNARY = {"I2_S", "TL1", "TL2", "TQ1_0", "TQ2_0", "SHERRY", "STQ1_0"}
TYPES = ["sherry", "stq1_0", "tl2", "i2_s"]


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def bits_per_weight(tern, path):
    d = json.loads(run([tern, "inspect", path, "--json"]).stdout)
    bits = params = 0
    for s in d["summary"]:
        if s["type"].upper() in TERNARY:
            bits += 8 * s["bytes"]
            params += s["params"]
    return bits / params


def make_files(a, shape):
    files = {}
    src = os.path.join(a.out, f"{shape}-sherry.gguf")
    if not os.path.exists(src):
        run([a.tern, "synth", src, "--shape", shape, "--type", "sherry", "--quiet"])
    files["sherry"] = src
    for ty in TYPES[1:]:
        dst = os.path.join(a.out, f"{shape}-{ty}.gguf")
        if not os.path.exists(dst):
            try:
                r = run([a.tern, "quantize", src, dst, "--type", ty])
                open(dst + ".quantize.txt", "w").write(r.stdout + r.stderr)
            except subprocess.CalledProcessError as e:
                print(f"{shape}: no {ty}: {(e.stderr or e.stdout).strip().splitlines()[-1:]}",
                      file=sys.stderr)
                continue
        files[ty] = dst
    return files


def bench(cmd_prefix, path, threads, p, n):
    """One run (1 timed repetition per test) of a llama-bench-compatible tool: {(test, t): t/s}."""
    cmd = cmd_prefix + ["-m", path, "-p", str(p), "-n", str(n), "-t", threads, "-r", "1",
                        "-o", "json"]
    for attempt in range(3):
        try:
            out = run(cmd).stdout
            break
        except subprocess.CalledProcessError as e:
            # bitnet.cpp's TL2 build (llama-bench) sometimes dies with SIGSEGV at start-up
            # on a file it runs fine the next time; retry, and say so.
            if e.returncode != -11 or attempt == 2:
                raise
            print(f"  {cmd[0]} crashed (SIGSEGV), retrying", file=sys.stderr)
    recs = json.loads(out[out.index("["):])
    res = {}
    for r in recs:
        test = f"pp{r['n_prompt']}" if r["n_prompt"] > 0 else f"tg{r['n_gen']}"
        res[(test, int(r["n_threads"]))] = float(r["avg_ts"])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shapes", default="large,3b,2b4t")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--tern", default="target/release/tern")
    ap.add_argument("--bitnet-i2s", default="/work/bitnet-build")
    ap.add_argument("--bitnet-tl2", default="large=/work/bitnet-tl2-large,3b=/work/bitnet-tl2-3B")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--svg", default=None)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tl2_builds = dict(kv.split("=", 1) for kv in a.bitnet_tl2.split(",") if kv)
    shapes = a.shapes.split(",")

    runs = []  # (engine, shape, type, path, cmd_prefix, p, n)
    bpw = {}
    for shape in shapes:
        files = make_files(a, shape)
        for ty, path in files.items():
            bpw[(shape, ty)] = bits_per_weight(a.tern, path)
            runs.append(("tern", shape, ty, path, [a.tern, "bench"], a.p, a.n))
        if "i2_s" in files and a.bitnet_i2s:
            lb = os.path.join(a.bitnet_i2s, "build", "bin", "llama-bench")
            runs.append(("bitnet.cpp", shape, "i2_s", files["i2_s"], [lb], a.p, a.n))
        if "tl2" in files and shape in tl2_builds:
            lb = os.path.join(tl2_builds[shape], "build", "bin", "llama-bench")
            runs.append(("bitnet.cpp", shape, "tl2", files["tl2"], [lb], 0, a.n))

    samples = {}  # (engine, shape, type, test, threads) -> [t/s]
    for rnd in range(a.rounds):
        for engine, shape, ty, path, cmd, p, n in runs:
            print(f"round {rnd + 1}/{a.rounds}: {engine} {shape} {ty}", file=sys.stderr)
            for (test, t), v in bench(cmd, path, a.threads, p, n).items():
                samples.setdefault((engine, shape, ty, test, t), []).append(v)

    def stat(key):
        v = samples.get(key)
        if not v:
            return None
        return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)

    json.dump({"rounds": a.rounds, "p": a.p, "n": a.n,
               "bpw": {f"{s}/{t}": b for (s, t), b in bpw.items()},
               "samples": [{"engine": k[0], "shape": k[1], "type": k[2], "test": k[3],
                            "threads": k[4], "tps": v} for k, v in samples.items()]},
              open(os.path.join(a.out, "results.json"), "w"), indent=1)

    tg, pp = f"tg{a.n}", f"pp{a.p}"
    threads = [int(t) for t in a.threads.split(",")]
    csv_rows = ["engine,shape,type,threads,bpw,tg_tps,pp_tps,tg_sd,pp_sd,file_mib"]
    print(f"| shape | engine | type | bits/weight | file MiB | threads | {pp} t/s | {tg} t/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for shape in shapes:
        for engine, s, ty, path, *_ in runs:
            if s != shape:
                continue
            mib = os.path.getsize(path) / 2**20
            for t in threads:
                g, q = stat((engine, s, ty, tg, t)), stat((engine, s, ty, pp, t))
                fmt = lambda x: f"{x[0]:.2f} ± {x[1]:.2f}" if x else "n/a"
                print(f"| {s} | {engine} | {ty.upper()} | {bpw[(s, ty)]:.3f} | {mib:.0f} | {t} "
                      f"| {fmt(q)} | {fmt(g)} |")
                csv_rows.append(",".join(str(x) for x in [
                    engine, s, ty, t, f"{bpw[(s, ty)]:.4f}", g[0] if g else "",
                    q[0] if q else "", g[1] if g else "", q[1] if q else "", f"{mib:.1f}"]))
    open(os.path.join(a.out, "results.csv"), "w").write("\n".join(csv_rows) + "\n")

    print()
    print(f"Decode ({tg}) ratios, mean over rounds:")
    print("| shape | threads | SHERRY / tern TL2 | SHERRY / tern I2_S | SHERRY / best bitnet.cpp "
          "| tern TL2 / bitnet.cpp TL2 | tern I2_S / bitnet.cpp I2_S |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in shapes:
        for t in threads:
            g = lambda e, ty: (stat((e, shape, ty, tg, t)) or (None,))[0]
            sh = g("tern", "sherry")
            best = max([x for x in (g("bitnet.cpp", "tl2"), g("bitnet.cpp", "i2_s")) if x],
                       default=None)
            r = lambda x, y: f"{x / y:.2f}" if x and y else "n/a"
            print(f"| {shape} | {t} | {r(sh, g('tern', 'tl2'))} | {r(sh, g('tern', 'i2_s'))} "
                  f"| {r(sh, best)} | {r(g('tern', 'tl2'), g('bitnet.cpp', 'tl2'))} "
                  f"| {r(g('tern', 'i2_s'), g('bitnet.cpp', 'i2_s'))} |")
    if a.svg:
        here = os.path.dirname(os.path.abspath(__file__))
        run([sys.executable, os.path.join(here, "plot_tps_bpw.py"),
             os.path.join(a.out, "results.csv"), a.svg])
        print(f"\nwrote {a.svg}")


if __name__ == "__main__":
    main()
