"""The summary table gpu_check.sh prints last: kvserve's bench JSON files
against the PyTorch peers and issue 4's targets; also writes them all to one
JSON file.

usage: summarize.py BENCH_JSON_DIR PEERS_JSON RESULTS_JSON"""
import json
import re
import sys
from pathlib import Path

# shape key -> (target text, predicate over (us, fraction of copy bw, speedup over SDPA or None))
DECODE_TARGETS = {
    "B=1 L=4096": ("< 15 us", lambda us, frac, vs: us < 15),
    "B=16 L=4096": (">= 90% copy", lambda us, frac, vs: frac >= 0.90),
    "B=64 L=4096": (">= 95% copy, > SDPA", lambda us, frac, vs: frac >= 0.95 and (vs is None or vs > 1)),
    "B=128 L=2048": (">= 95% copy, > SDPA", lambda us, frac, vs: frac >= 0.95 and (vs is None or vs > 1)),
    "B=8 L=32768": (">= 95% copy, > SDPA", lambda us, frac, vs: frac >= 0.95 and (vs is None or vs > 1)),
    "B=1 L=32768": (">= 80% copy", lambda us, frac, vs: frac >= 0.80),
}
# (op, first word of the shape) -> (target text, predicate over (us, TB/s, fraction of copy bw))
OTHER_TARGETS = {
    ("merge", "T=8192"): (">= 2.95 TB/s", lambda us, tbs, frac: tbs >= 2.95),
    ("append", "decode"): ("<= 5 us event-timed", lambda us, tbs, frac: us <= 5),
    ("append", "ragged"): (">= 85% copy", lambda us, tbs, frac: frac >= 0.85),
}
GRAPH_APPEND = re.compile(r"\[ append   \] (.*): ([0-9.]+) us per launch inside a CUDA graph")


def main(bench_dir, peers_json, results_json, bench_log=None):
    peers = {}
    if Path(peers_json).exists():
        for p in json.loads(Path(peers_json).read_text())["peers"]:
            peers[p["shape"]] = p
    rows, copy_bw = [], 0.0
    for path in sorted(Path(bench_dir).glob("*.json")):
        doc = json.loads(path.read_text())
        copy_bw = doc["copy_bandwidth_bytes_per_s"]
        rows.extend(doc["results"])
    Path(results_json).write_text(json.dumps({"copy_bandwidth_bytes_per_s": copy_bw, "results": rows,
                                              "peers": list(peers.values())}, indent=1))
    print(f"\n=== issue 4 summary (copy bandwidth {copy_bw / 1e12:.2f} TB/s) ===")
    print(f"{'op':<14}{'shape':<14}{'us':>9}{'TB/s':>8}{'%copy':>7}{'SDPA us':>9}{'x SDPA':>8}  {'target':<22}met  check")
    for r in rows:
        us, tbs = r["time_us"], r["bytes"] / r["time_us"] / 1e6
        frac = r["bytes"] / r["time_us"] * 1e6 / copy_bw if copy_bw else 0
        key = " ".join(r["shape"].split()[:2])
        peer = peers.get(key) if r["op"] == "decode" else None
        vs = peer["time_us"] / us if peer else None
        if r["op"] == "decode" and key in DECODE_TARGETS:
            target, ok = DECODE_TARGETS[key][0], DECODE_TARGETS[key][1](us, frac, vs)
        elif (r["op"], r["shape"].split()[0]) in OTHER_TARGETS:
            target, pred = OTHER_TARGETS[(r["op"], r["shape"].split()[0])]
            ok = pred(us, tbs, frac)
        else:
            target, ok = "-", True
        peer_us = f"{peer['time_us']:9.1f}" if peer else f"{'-':>9}"
        vs_text = f"{vs:8.2f}" if vs else f"{'-':>8}"
        print(f"{r['op']:<14}{key:<14}{us:9.2f}{tbs:8.3f}{100 * frac:6.1f}%{peer_us}{vs_text}  {target:<22}"
              f"{'yes' if ok else 'NO ':<5}{'ok' if r['check_ok'] else 'FAIL'}")

    if bench_log and Path(bench_log).exists():
        for match in GRAPH_APPEND.finditer(Path(bench_log).read_text()):
            us = float(match.group(2))
            print(f"{'append/graph':<14}{'decode B=256':<14}{us:9.2f}{'-':>8}{'-':>7}{'-':>9}{'-':>8}  "
                  f"{'<= 2.5 us per launch':<22}{'yes' if us <= 2.5 else 'NO ':<5}ok")


if __name__ == "__main__":
    main(*sys.argv[1:5])
