"""The benchmark list of scripts/gpu_benchmarks.txt: its reader, the targets
written in it, the results of one run of an invocation (its --json file, or
the table the bench prints when it writes none), and the A/B table that
scripts/gpu_check.sh prints last when KVSERVE_BASELINE_SRC is set.

usage: benchmarks.py ab RUNS_DIR MAIN_JSON_DIR BASE_JSON_DIR [--list FILE] [--json OUT]
                         [--threshold 0.03] [--baseline-name NAME]
  RUNS_DIR holds each invocation's output, ID.log and ID.baseline.log, and
  its exit status, ID.rc and ID.baseline.rc; MAIN_JSON_DIR and BASE_JSON_DIR
  are what {json} stood for in the arguments of the main and the baseline CLI.
  Rows of the baseline that did not run, failed before timing or lack the
  benchmark or an option read n/a. Exit status 0 whatever the times."""
import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LIST = Path(__file__).resolve().parents[2] / "scripts" / "gpu_benchmarks.txt"
RUN_STAGES = ("bench", "sampling", "norm")
# Stages the A/B table leaves out: the prefill stage compares the two
# multi-query kernels of one tree, not two trees.
OTHER_STAGES = ("tests", "prefill")


@dataclass
class Invocation:
    stage: str
    id: str
    timeout: str
    args: list
    target: str  # "-" or the conditions as written

    def json_name(self):
        """The file name of its --json {json}/NAME argument, or None."""
        for a, b in zip(self.args, self.args[1:]):
            if a == "--json" and b.startswith("{json}/"):
                return b[len("{json}/"):]
        return None


def load(path=DEFAULT_LIST):
    rows, seen = [], set()
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) != 5:
            raise SystemExit(f"{path}:{n}: expected 5 fields separated by '|', got {len(fields)}")
        stage, ident, timeout, args, target = fields
        if stage not in RUN_STAGES + OTHER_STAGES:
            raise SystemExit(f"{path}:{n}: unknown stage '{stage}'")
        if ident in seen or not ident or " " in ident:
            raise SystemExit(f"{path}:{n}: id '{ident}' empty, with a blank, or not unique")
        seen.add(ident)
        rows.append(Invocation(stage, ident, timeout, args.split() if args != "-" else [], target or "-"))
    return rows


# --- targets: "METRIC OP NUMBER[%] [words]" joined by ","
# us: time in us; tbs: TB/s; copy: fraction of the copy bandwidth (give it in %);
# sdpa: speedup over the SDPA peer of the same shape (met when there is no peer).
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_METRICS = ("us", "tbs", "copy", "sdpa")


@dataclass
class Target:
    text: str
    conditions: list  # (metric, op, number)

    def met(self, us, tbs, frac, vs):
        values = {"us": us, "tbs": tbs, "copy": frac, "sdpa": vs}
        return all(values[m] is None or _OPS[op](values[m], x) for m, op, x in self.conditions)


def parse_target(text):
    if text in ("", "-"):
        return None
    conditions, labels = [], []
    for part in text.split(","):
        words = part.split()
        if len(words) < 3 or words[0] not in _METRICS or words[1] not in _OPS:
            raise SystemExit(f"target '{text}': expected METRIC OP NUMBER [words], METRIC one of {_METRICS}")
        metric, op, number, note = words[0], words[1], words[2], words[3:]
        x = float(number.rstrip("%")) / (100 if number.endswith("%") else 1)
        conditions.append((metric, op, x))
        label = {"us": f"{op} {number} us", "tbs": f"{op} {number} TB/s", "copy": f"{op} {number} copy",
                 "sdpa": f"{op} SDPA" if x == 1 else f"{op} {number}x SDPA"}[metric]
        labels.append(" ".join([label] + note))
    return Target(", ".join(labels), conditions)


# --- results of one run
# A row of the table bench/report.cpp prints: op, shape, time (us), TB/s, % copy, TFLOP/s, check.
_TABLE_ROW = re.compile(r"^(\S+)\s+(.*?)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)  (.*)$")


def parse_table(text):
    """The result rows of the text the bench prints, [{op, shape, time_us, check}]."""
    rows, in_table = [], False
    for line in text.splitlines():
        if line.startswith("op ") and "time (us)" in line:
            in_table = True
            continue
        m = _TABLE_ROW.match(line) if in_table else None
        if m:
            rows.append({"op": m.group(1), "shape": m.group(2).strip(), "time_us": float(m.group(3)),
                         "check": m.group(7), "source": "text"})
    return rows


def run_results(runs_dir, json_dir, inv, suffix=""):
    """(rows, exit status or None) of one run of inv: the rows of its JSON file
    when it wrote one, else those of the table in its log."""
    rc_file = Path(runs_dir) / f"{inv.id}{suffix}.rc"
    rc = int(rc_file.read_text().strip() or 0) if rc_file.exists() else None
    name = inv.json_name()
    if name and json_dir and (Path(json_dir) / name).exists():
        try:
            doc = json.loads((Path(json_dir) / name).read_text())
            return [dict(r, source="json") for r in doc["results"]], rc
        except (ValueError, KeyError):
            pass
    log = Path(runs_dir) / f"{inv.id}{suffix}.log"
    return (parse_table(log.read_text(errors="replace")) if log.exists() else []), rc


def pair(main_rows, base_rows):
    """Each main row with its baseline row: same op and shape, else the one at
    the same place when both ran as many rows of that op, else None."""
    out = []
    for i, r in enumerate(main_rows):
        same = [b for b in base_rows if b["op"] == r["op"] and b["shape"] == r["shape"]]
        if same:
            out.append((r, same[0]))
        elif len(base_rows) == len(main_rows) and base_rows[i]["op"] == r["op"]:
            out.append((r, base_rows[i]))
        else:
            out.append((r, None))
    return out


def ab_table(runs_dir, main_json, base_json, invocations, threshold=0.03):
    rows = []
    for inv in invocations:
        if inv.stage not in RUN_STAGES:
            continue
        main_rows, main_rc = run_results(runs_dir, main_json, inv)
        base_rows, base_rc = run_results(runs_dir, base_json, inv, ".baseline")
        if main_rc is None and base_rc is None:
            continue  # its stage did not run
        label = inv.id
        if not main_rows:
            main_rows = [{"op": inv.args[0] if inv.args else "?", "shape": "", "time_us": None}]
        for m, b in pair(main_rows, base_rows):
            if len(main_rows) > 1:
                label = f"{inv.id} {m['op']} {m['shape']}"
            mu, bu = m.get("time_us"), b["time_us"] if b else None
            ratio = mu / bu if mu and bu else None
            notes = []
            if ratio is not None and ratio > 1 + threshold:
                notes.append(f"SLOWER {100 * (ratio - 1):+.1f}%")
            if b is None and base_rc == 0:
                notes.append("no baseline row of this op and shape")
            for side, rc in (("main", main_rc), ("baseline", base_rc)):
                if rc is None:
                    notes.append(f"{side} not run")
                elif rc:
                    notes.append(f"{side} {'timed out' if rc in (124, 137) else f'exit {rc}'}")
            rows.append({"invocation": label, "stage": inv.stage, "args": " ".join(inv.args),
                         "main_us": mu, "baseline_us": bu, "ratio": ratio,
                         "slower": bool(ratio is not None and ratio > 1 + threshold), "note": "; ".join(notes)})
    return rows


def print_ab(rows, threshold, baseline_name=""):
    def us(x):
        return f"{x:11.2f}" if x is not None else f"{'n/a':>11}"

    print(f"\n=== A/B: main against baseline {baseline_name}(same call, each invocation back to back; "
          f"time us, ratio main / baseline; flagged where main is > {100 * threshold:g} % slower)")
    width = max([len(r["invocation"]) for r in rows] + [10])
    print(f"{'invocation':<{width}} {'main':>11} {'baseline':>11} {'ratio':>7}  flag")
    for r in rows:
        ratio = f"{r['ratio']:7.3f}" if r["ratio"] is not None else f"{'n/a':>7}"
        print(f"{r['invocation']:<{width}} {us(r['main_us'])} {us(r['baseline_us'])} {ratio}  {r['note']}")
    compared = [r for r in rows if r["ratio"] is not None]
    slower = [r for r in compared if r["slower"]]
    print(f"{len(slower)} of {len(compared)} compared rows more than {100 * threshold:g} % slower; "
          f"{len(rows) - len(compared)} n/a")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    ab = sub.add_parser("ab", help="the A/B table of a run with KVSERVE_BASELINE_SRC")
    ab.add_argument("runs_dir")
    ab.add_argument("main_json")
    ab.add_argument("base_json")
    ab.add_argument("--list", default=str(DEFAULT_LIST))
    ab.add_argument("--json", help="also write the rows here")
    ab.add_argument("--threshold", type=float, default=0.03)
    ab.add_argument("--baseline-name", default="")
    a = p.parse_args(argv)
    rows = ab_table(a.runs_dir, a.main_json, a.base_json, load(a.list), a.threshold)
    print_ab(rows, a.threshold, f"{a.baseline_name} " if a.baseline_name else "")
    if a.json:
        Path(a.json).write_text(json.dumps({"threshold": a.threshold, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
