#!/usr/bin/env python3
"""Collects tools/sherry_bench.sh's outputs into one CSV (stdout):
engine,shape,type,threads,bpw,tg_tps,pp_tps,file_mib

bpw: bits per weight of the file's ternary tensors (`tern inspect --json` summary).
"""
import glob
import json
import os
import sys

TERNARY = {"I2_S", "TL1", "TL2", "TQ1_0", "TQ2_0", "SHERRY", "STQ1_0"}


def bpw(inspect_path):
    d = json.load(open(inspect_path))
    bits = params = 0
    for s in d["summary"]:
        if s["type"].upper() in TERNARY:
            bits += 8 * s["bytes"]
            params += s["params"]
    return bits / params if params else float("nan")


def main():
    out = sys.argv[1]
    print("engine,shape,type,threads,bpw,tg_tps,pp_tps,file_mib")
    for bench in sorted(glob.glob(os.path.join(out, "*.bench.json"))):
        base = bench[: -len(".bench.json")]
        shape, ty = os.path.basename(base).split("-", 1)
        b = bpw(base + ".inspect.json")
        mib = os.path.getsize(base + ".gguf") / 2**20
        recs = json.load(open(bench))
        for t in sorted({r["n_threads"] for r in recs}):
            tg = [r["avg_ts"] for r in recs if r["n_threads"] == t and r["n_gen"] > 0]
            pp = [r["avg_ts"] for r in recs if r["n_threads"] == t and r["n_prompt"] > 0]
            print(f"tern,{shape},{ty},{t},{b:.4f},{tg[0] if tg else ''},{pp[0] if pp else ''},{mib:.1f}")
        cmp_path = os.path.join(out, f"{shape}-compare.json")
        if ty == "i2_s" and os.path.exists(cmp_path):
            c = json.load(open(cmp_path))
            for t in sorted({x["n_threads"] for x in c["tests"]}):
                tg = [x["bitnet_cpp"]["avg_ts"] for x in c["tests"] if x["n_threads"] == t and x["test"].startswith("tg")]
                pp = [x["bitnet_cpp"]["avg_ts"] for x in c["tests"] if x["n_threads"] == t and x["test"].startswith("pp")]
                print(f"bitnet.cpp,{shape},i2_s,{t},{b:.4f},{tg[0] if tg else ''},{pp[0] if pp else ''},{mib:.1f}")


if __name__ == "__main__":
    main()
