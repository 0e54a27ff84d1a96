#!/usr/bin/python3
"""Cross-check patchwise's linear probe against scikit-learn.

Both sides fit the same multinomial logistic regression to the same data, at
one L2 strength, and report test accuracy and fit time side by side:

  * the data: Fashion-MNIST raw pixels (the IDX .gz files, read here with gzip
    and numpy), each pixel / 255 as float32, standardised per feature with the
    training split's mean and population std (std < 1e-8 -> 1), exactly as
    package probe does;
  * the loss: mean cross-entropy + (lambda/2)*||W||^2, bias unpenalised, which
    is scikit-learn's LogisticRegression(solver="lbfgs", C=1/(lambda*n));
  * scikit-learn: float64, its L-BFGS-B (scipy) with tol and max_iter as given;
  * patchwise: `go test ./probe -run '^TestSklearnCrossCheck$'` with
    PATCHWISE_CROSSCHECK=1, which fits probe.FitLinear (float32 scores,
    gonum L-BFGS, stopping at max|gradient of the mean loss| <= its tol) and
    prints a JSON line.

The fit times cover the fit alone (patchwise's includes computing the
standardisation). Run from the repository root with Debian's Python (it has
numpy and sklearn):

    /usr/bin/python3 bench/probe_sklearn.py --l2 1e-2

Extra go flags can be passed through the GOFLAGS environment variable. The
script exits 1 when the acceptance check fails: test accuracies more than 0.5
points apart, or patchwise slower than scikit-learn.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(data_dir, prefix):
    pixels = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"), 16)
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"), 8)
    x = pixels.reshape(len(labels), -1).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)


def standardise(train, test):
    """(x - mean)/std with the training split's per-feature mean and population
    std computed in float64; features with std < 1e-8 are only centred."""
    t64 = train.astype(np.float64)
    mean = t64.mean(axis=0)
    std = np.sqrt(((t64 - mean) ** 2).mean(axis=0))
    std[std < 1e-8] = 1
    return (t64 - mean) / std, (test.astype(np.float64) - mean) / std


def objective(coef, intercept, x, y, l2):
    """mean cross-entropy + (l2/2)*||coef||^2, in float64."""
    z = x @ coef.T + intercept
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return float((lse - z[np.arange(len(y)), y]).mean() + 0.5 * l2 * (coef**2).sum())


def run_sklearn(xtr, ytr, xte, yte, l2, tol, max_iter):
    from sklearn.linear_model import LogisticRegression

    n = len(ytr)
    model = LogisticRegression(solver="lbfgs", C=1 / (l2 * n), tol=tol, max_iter=max_iter)
    start = time.perf_counter()
    model.fit(xtr, ytr)
    secs = time.perf_counter() - start
    return {
        "impl": "sklearn",
        "test_top1": float((model.predict(xte) == yte).mean()),
        "fit_seconds": secs,
        "iterations": int(model.n_iter_[0]),
        "converged": bool(model.n_iter_[0] < max_iter),
        "loss": objective(model.coef_, model.intercept_, xtr, ytr, l2),
        "tol": tol,
        "max_iter": max_iter,
    }


def run_patchwise(repo, l2, tol, max_iter):
    env = dict(os.environ)
    env.update({
        "PATCHWISE_CROSSCHECK": "1",
        "PATCHWISE_CROSSCHECK_L2": repr(l2),
        "PATCHWISE_CROSSCHECK_MAXITER": str(max_iter),
    })
    if tol is not None:
        env["PATCHWISE_CROSSCHECK_TOL"] = repr(tol)
    cmd = ["go", "test", "./probe", "-run", "^TestSklearnCrossCheck$", "-count=1", "-v", "-timeout", "30m"]
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("CROSSCHECK "):
            return json.loads(line[len("CROSSCHECK "):])
    sys.stderr.write(proc.stdout + proc.stderr)
    raise SystemExit("probe_sklearn: no CROSSCHECK line from %s (exit %d)" % (" ".join(cmd), proc.returncode))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="folder of the IDX .gz files")
    ap.add_argument("--l2", type=float, default=1e-2, help="lambda (default 1e-2, what the default grid picks for raw pixels)")
    ap.add_argument("--sk-tol", type=float, default=1e-4, help="scikit-learn's tol (its default 1e-4, on the gradient of the summed loss)")
    ap.add_argument("--sk-max-iter", type=int, default=5000, help="scikit-learn's max_iter")
    ap.add_argument("--go-tol", type=float, default=None, help="patchwise's tol (default: probe.DefaultTol, on the gradient of the mean loss)")
    ap.add_argument("--go-max-iter", type=int, default=500, help="patchwise's MaxIter (default probe.DefaultMaxIter)")
    ap.add_argument("--repo", default=os.path.dirname(here), help="repository root")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()

    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    ours = run_patchwise(args.repo, args.l2, args.go_tol, args.go_max_iter)
    xtr_std, xte_std = standardise(xtr, xte)
    ref = run_sklearn(xtr_std, ytr, xte_std, yte, args.l2, args.sk_tol, args.sk_max_iter)

    diff = abs(ours["test_top1"] - ref["test_top1"])
    ok = diff <= 0.005 and ours["fit_seconds"] <= ref["fit_seconds"]
    summary = {"l2": args.l2, "c": 1 / (args.l2 * len(ytr)), "n_train": len(ytr), "n_test": len(yte),
               "sklearn": ref, "patchwise": ours, "top1_diff": diff,
               "speedup": ref["fit_seconds"] / ours["fit_seconds"], "ok": ok}
    if args.json:
        print(json.dumps(summary))
    else:
        print("Fashion-MNIST raw pixels, %d train / %d test, lambda %g (C = %.4g)" % (len(ytr), len(yte), args.l2, summary["c"]))
        print("%-10s %9s %9s %6s %10s %12s" % ("", "test top1", "fit s", "iters", "converged", "objective"))
        for r in (ref, ours):
            print("%-10s %9.4f %9.2f %6d %10s %12.8f" % (r["impl"], r["test_top1"], r["fit_seconds"], r["iterations"],
                                                       r["converged"], r["loss"]))
        print("top-1 difference %.2f points; patchwise %.1fx the speed of sklearn: %s" % (
            100 * diff, summary["speedup"], "OK" if ok else "FAIL (want within 0.5 points and at least as fast)"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
