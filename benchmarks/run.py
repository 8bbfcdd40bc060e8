"""Run every benchmark (benchmarks/bench_*.py), each in its own process, then print one table
of every result with its ratio against the reference and whether its goal is met.

    python benchmarks/run.py [--only core,cnn] [--quick]
"""
import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names (core, cnn, latency, jvm, ...)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args(argv)
    names = sorted(os.path.basename(p)[len("bench_"):-3]
                   for p in glob.glob(os.path.join(HERE, "bench_*.py")))
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in names]
        if unknown or not wanted:
            parser.error("--only %r: %s; the benchmarks are: %s"
                         % (args.only, "unknown " + ", ".join(unknown) if unknown
                            else "names no benchmark", ", ".join(names)))
        names = [n for n in names if n in wanted]
    failed = []
    for name in names:
        cmd = [sys.executable, os.path.join(HERE, "bench_%s.py" % name)]
        if args.quick:
            cmd.append("--quick")
        print("\n### %s" % " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    rows = []
    for name in names:
        path = os.path.join(common.RESULTS, name + ".json")
        if os.path.exists(path):
            with open(path) as f:
                for r in json.load(f)["results"]:
                    rows.append(dict(r, name="%s: %s" % (name, r["name"])))
    common.print_table("all benchmarks", rows)
    os.makedirs(common.RESULTS, exist_ok=True)    # no benchmark may have written a result
    with open(os.path.join(common.RESULTS, "summary.json"), "w") as f:
        json.dump({"meta": common.machine(), "results": rows, "failed": failed}, f, indent=2)
    if failed:
        print("benchmarks that failed to run: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
