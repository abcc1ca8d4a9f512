"""The summary table gpu_check.sh prints last: kvserve's bench JSON files
against the PyTorch peers and issue 4's targets; also writes them all to one
JSON file. The targets are those of scripts/gpu_benchmarks.txt (the last
field of each line; see benchmarks.py for their form), each applied to the
rows of the JSON file its line's --json {json}/NAME names.

usage: summarize.py BENCH_JSON_DIR PEERS_JSON RESULTS_JSON [BENCH_LOG] [--list FILE]"""
import argparse
import json
import re
from pathlib import Path

from benchmarks import DEFAULT_LIST, load, parse_target

GRAPH_APPEND = re.compile(r"\[ append   \] (.*): ([0-9.]+) us per launch inside a CUDA graph")


def main(bench_dir, peers_json, results_json, bench_log=None, list_path=DEFAULT_LIST):
    invocations = load(list_path)
    targets = {inv.json_name(): parse_target(inv.target) for inv in invocations if inv.json_name()}
    graph_target = next((parse_target(inv.target) for inv in invocations if inv.id == "append-graph"), None)
    peers = {}
    if Path(peers_json).exists():
        for p in json.loads(Path(peers_json).read_text())["peers"]:
            peers[p["shape"]] = p
    # The files in the order of the list, then any others in the directory.
    listed = [name for name in targets if (Path(bench_dir) / name).exists()]
    others = sorted(p.name for p in Path(bench_dir).glob("*.json") if p.name not in targets)
    rows, copy_bw = [], 0.0
    for name in listed + others:
        doc = json.loads((Path(bench_dir) / name).read_text())
        copy_bw = doc["copy_bandwidth_bytes_per_s"]
        rows.extend((r, targets.get(name)) for r in doc["results"])
    Path(results_json).write_text(json.dumps({"copy_bandwidth_bytes_per_s": copy_bw, "results": [r for r, _ in rows],
                                              "peers": list(peers.values())}, indent=1))
    print(f"\n=== issue 4 summary (copy bandwidth {copy_bw / 1e12:.2f} TB/s) ===")
    print(f"{'op':<14}{'shape':<14}{'us':>9}{'TB/s':>8}{'%copy':>7}{'SDPA us':>9}{'x SDPA':>8}  {'target':<22}met  check")
    for r, target in rows:
        us, tbs = r["time_us"], r["bytes"] / r["time_us"] / 1e6
        frac = r["bytes"] / r["time_us"] * 1e6 / copy_bw if copy_bw else 0
        key = " ".join(r["shape"].split()[:2])
        peer = peers.get(key) if r["op"] == "decode" else None
        vs = peer["time_us"] / us if peer else None
        text, ok = (target.text, target.met(us, tbs, frac, vs)) if target else ("-", True)
        peer_us = f"{peer['time_us']:9.1f}" if peer else f"{'-':>9}"
        vs_text = f"{vs:8.2f}" if vs else f"{'-':>8}"
        print(f"{r['op']:<14}{key:<14}{us:9.2f}{tbs:8.3f}{100 * frac:6.1f}%{peer_us}{vs_text}  {text:<22}"
              f"{'yes' if ok else 'NO ':<5}{'ok' if r['check_ok'] else 'FAIL'}")

    if bench_log and Path(bench_log).exists():
        for match in GRAPH_APPEND.finditer(Path(bench_log).read_text()):
            us = float(match.group(2))
            text, ok = (graph_target.text, graph_target.met(us, None, None, None)) if graph_target else ("-", True)
            print(f"{'append/graph':<14}{'decode B=256':<14}{us:9.2f}{'-':>8}{'-':>7}{'-':>9}{'-':>8}  "
                  f"{text:<22}{'yes' if ok else 'NO ':<5}ok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_dir")
    parser.add_argument("peers_json")
    parser.add_argument("results_json")
    parser.add_argument("bench_log", nargs="?")
    parser.add_argument("--list", default=str(DEFAULT_LIST), help="the benchmark list (default %(default)s)")
    a = parser.parse_args()
    main(a.bench_dir, a.peers_json, a.results_json, a.bench_log, a.list)
