#!/usr/bin/python3
"""Cross-check a comparison report's statistics with SciPy, and its schema.

Patchwise computes the intervals of report.json in Go (pipeline/stats.go).
This script recomputes them independently:

  * the paired t interval of the per-seed differences with
    scipy.stats.ttest_1samp(d, 0).confidence_interval(level): must agree to
    1e-9;
  * the paired bootstrap interval over test images with
    scipy.stats.bootstrap((delta,), numpy.mean, method="percentile"), the
    per-image differences delta rebuilt here from the probes' bitsets of
    correct test images (linear_correct) for the linear probe comparisons:
    the two resample differently, so they must agree within a fifth of the
    bootstrap's standard error (their Monte Carlo scatter is about a
    twentieth at 10,000 resamples);
  * the seeds needed: the least n >= 2 with t.ppf((1+level)/2, n-1)*s/sqrt(n)
    < |mean|, counted with scipy.stats.t: must be equal;
  * the report against docs/report.schema.json with jsonschema's Draft
    2020-12 validator.

Usage (Debian's python3-scipy and python3-jsonschema):

    /usr/bin/python3 bench/stats_scipy.py --report RUN/report.json
    /usr/bin/python3 bench/stats_scipy.py --cases cases.json --report R --schema docs/report.schema.json

--cases is a JSON list of {"diffs", "delta", "level", "resamples", "t":
[lo, hi] or null, "bootstrap": [lo, hi], "seeds_needed"} that
`go test ./pipeline -run TestStatsSciPyCrossCheck` writes with Go's results.
The script prints one line per check and exits 1 when one fails.
"""

import argparse
import base64
import json
import math
import os
import sys

import numpy as np
import scipy
import scipy.stats as st

MAX_SEEDS_NEEDED = 10000
failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
    print(("ok   " if ok else "FAIL ") + what)


def t_interval(d, level):
    if len(d) < 2:
        return None
    ci = st.ttest_1samp(np.asarray(d, dtype=np.float64), 0).confidence_interval(level)
    return float(ci.low), float(ci.high)


def bootstrap(delta, level, resamples, seed):
    res = st.bootstrap((np.asarray(delta, dtype=np.float64),), np.mean, confidence_level=level,
                       n_resamples=resamples, method="percentile", random_state=seed, vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high), float(res.standard_error)


def seeds_needed(mean, sd, level):
    if mean == 0:
        return 0
    if sd == 0:
        return 2
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        if st.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n) < abs(mean):
            return n
    return 0


def decode(bits, n):
    b = base64.b64decode(bits)
    if len(b) != (n + 7) // 8:
        raise ValueError(f"{len(b)} bytes for {n} samples")
    return np.unpackbits(np.frombuffer(b, dtype=np.uint8), bitorder="little")[:n].astype(np.float64)


def near(a, b, tol):
    return abs(a - b) <= tol


def check_case(i, c):
    level = c["level"]
    t = t_interval(c["diffs"], level)
    if t is None or c["t"] is None:
        check(t is None and c["t"] is None, f"case {i}: t interval of {len(c['diffs'])} differences: Go {c['t']}, SciPy {t}")
    else:
        check(near(t[0], c["t"][0], 1e-9) and near(t[1], c["t"][1], 1e-9),
              f"case {i}: t interval Go [{c['t'][0]:.6f}, {c['t'][1]:.6f}], SciPy [{t[0]:.6f}, {t[1]:.6f}]")
    lo, hi, se = bootstrap(c["delta"], level, c["resamples"], 1)
    tol = max(0.2 * se, 1e-6)
    check(near(lo, c["bootstrap"][0], tol) and near(hi, c["bootstrap"][1], tol),
          f"case {i}: bootstrap Go [{c['bootstrap'][0]:.5f}, {c['bootstrap'][1]:.5f}], SciPy [{lo:.5f}, {hi:.5f}] (tolerance {tol:.5f})")
    d = np.asarray(c["diffs"], dtype=np.float64)
    if len(d) >= 2:
        n = seeds_needed(float(d.mean()), float(d.std(ddof=1)), level)
        check(n == c["seeds_needed"], f"case {i}: seeds needed Go {c['seeds_needed']}, SciPy {n}")


def check_report(path, schema_path):
    rep = json.load(open(path))
    if schema_path:
        import jsonschema
        schema = json.load(open(schema_path))
        jsonschema.Draft202012Validator.check_schema(schema)
        errs = list(jsonschema.Draft202012Validator(schema).iter_errors(rep))
        for e in errs[:20]:
            print("     schema:", "/".join(str(p) for p in e.absolute_path), e.message[:300])
        check(not errs, f"{path} validates against {schema_path} ({len(errs)} errors)")
    m = rep["methods"]
    level = m["level"]
    # The probes of each (pretext, dataset) by seed.
    probes = {}
    for e in rep["entries"]:
        if e.get("error"):
            continue
        for p in e["probes"] or []:
            probes.setdefault((e["pretext"], p["dataset"]), {})[e["seed"]] = p["result"]
    for c in rep["comparisons"]:
        what = f"{c['pretext']} vs {c['reference']} on {c['dataset']} ({c['score']})"
        if not c["seeds"]:
            continue
        t = t_interval(c["diffs"], level)
        if t is None:
            check(c["t_interval"] is None, f"{what}: no t interval for one seed")
        else:
            g = c["t_interval"]
            check(near(t[0], g["lo"], 1e-9) and near(t[1], g["hi"], 1e-9),
                  f"{what}: t interval Go [{g['lo']:.5f}, {g['hi']:.5f}], SciPy [{t[0]:.5f}, {t[1]:.5f}]")
            if "seeds_needed" in c:
                d = np.asarray(c["diffs"])
                n = seeds_needed(float(d.mean()), float(d.std(ddof=1)), level)
                check(n == c["seeds_needed"], f"{what}: seeds needed Go {c['seeds_needed']}, SciPy {n}")
        if c["score"] != "linear_top1" or c["bootstrap_interval"] is None:
            continue
        a, b = probes[(c["pretext"], c["dataset"])], probes[(c["reference"], c["dataset"])]
        delta = None
        for i, s in enumerate(c["seeds"]):
            ra, rb = a[s], b[s]
            n = ra["protocol"]["test_n"]
            ca, cb = decode(ra["linear_correct"], n), decode(rb["linear_correct"], n)
            check(near(ca.mean() - cb.mean(), c["diffs"][i], 1e-12),
                  f"{what}, seed {s}: the bitsets give the difference {ca.mean() - cb.mean():.4f}, the report {c['diffs'][i]:.4f}")
            delta = (ca - cb) if delta is None else delta + (ca - cb)
        delta /= len(c["seeds"])
        lo, hi, se = bootstrap(delta, level, m["resamples"], 1)
        g = c["bootstrap_interval"]
        tol = max(0.2 * se, 1e-6)
        check(near(lo, g["lo"], tol) and near(hi, g["hi"], tol),
              f"{what}: bootstrap Go [{g['lo']:.5f}, {g['hi']:.5f}], SciPy [{lo:.5f}, {hi:.5f}] (tolerance {tol:.5f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", help="JSON list of Go's intervals on generated data")
    ap.add_argument("--report", help="a report.json to recompute and validate")
    ap.add_argument("--schema", default=os.path.join(os.path.dirname(__file__), "..", "docs", "report.schema.json"),
                    help="the JSON Schema (default docs/report.schema.json); empty: do not validate")
    args = ap.parse_args()
    print(f"SciPy {scipy.__version__}, NumPy {np.__version__}")
    if args.cases:
        for i, c in enumerate(json.load(open(args.cases))):
            check_case(i, c)
    if args.report:
        check_report(args.report, args.schema)
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
