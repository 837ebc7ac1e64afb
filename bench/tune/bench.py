"""Optuna's TPE and random samplers on the problems of main.go, at the same
budget, side by side with Kiln's rows (the JSON lines main.go writes).

Each study minimizes one problem for TRIALS trials with a seeded sampler
(TPESampler(seed=s) with Optuna's defaults, RandomSampler(seed=s)) and an
in-memory storage. Per-trial time is the whole optimize loop (ask, the
suggest calls where Optuna samples, the objective, tell) divided by the
trials, as Kiln's is its Optimize call divided by the trials; the
objectives are closed-form, so this is the tuner's own overhead.

Prints a Markdown table: medians over the seeds of the best value found,
and of the time per trial, with Kiln's time as a ratio of Optuna's.
"""

import argparse
import json
import math
import statistics
import sys
import time

import optuna


def branin(x, y):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    s = 0.0
    for i in range(4):
        e = sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))
        s += ALPHA[i] * math.exp(-e)
    return -s


def obj_branin(t):
    return branin(t.suggest_float("x", -5, 10), t.suggest_float("y", 0, 15))


def obj_hartmann6(t):
    return hartmann6([t.suggest_float(f"x{i}", 0, 1) for i in range(6)])


def obj_sphere5(t):
    a = t.suggest_float("a", -10, 10) - 1.5
    b = t.suggest_float("b", -10, 10) + 2
    c = t.suggest_float("c", -10, 10) - 3
    d = math.log10(t.suggest_float("d", 1e-3, 1e3, log=True)) - 1
    e = t.suggest_int("e", -20, 20) - 7
    return a * a + b * b + c * c + d * d + e * e / 10


PROBLEMS = {"branin": obj_branin, "hartmann6": obj_hartmann6, "sphere5": obj_sphere5}


def optuna_rows(problems, seeds, trials):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in problems:
        for sampler in ("tpe", "random"):
            for seed in range(seeds):
                s = optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
                study = optuna.create_study(sampler=s, direction="minimize")
                t0 = time.perf_counter()
                study.optimize(PROBLEMS[name], n_trials=trials)
                ms = (time.perf_counter() - t0) * 1000 / trials
                yield {"impl": "optuna", "problem": name, "sampler": sampler, "seed": seed, "trials": trials,
                       "best": study.best_value, "ms_per_trial": ms}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True, help="JSON lines from main.go")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--problems", default="branin,hartmann6,sphere5")
    ap.add_argument("--rows", help="also write every row (both tuners) as JSON lines here")
    a = ap.parse_args()
    problems = [p.strip() for p in a.problems.split(",")]
    with open(a.kiln) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows += list(optuna_rows(problems, a.seeds, a.trials))
    if a.rows:
        with open(a.rows, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    def med(impl, problem, sampler, key):
        xs = [r[key] for r in rows if r["impl"] == impl and r["problem"] == problem and r["sampler"] == sampler]
        if len(xs) != a.seeds:
            sys.exit(f"{impl} {problem} {sampler}: {len(xs)} studies, want {a.seeds}")
        return statistics.median(xs)

    print(f"Optuna {optuna.__version__}; medians over {a.seeds} seeds of {a.trials} trials each.\n")
    print("| problem | sampler | Kiln best | Optuna best | Kiln ms/trial | Optuna ms/trial | Kiln/Optuna time |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for p in problems:
        for s in ("tpe", "random"):
            kb, ob = med("kiln", p, s, "best"), med("optuna", p, s, "best")
            kt, ot = med("kiln", p, s, "ms_per_trial"), med("optuna", p, s, "ms_per_trial")
            print(f"| {p} | {s} | {kb:.3f} | {ob:.3f} | {kt:.3f} | {ot:.3f} | {kt / ot:.3f} |")


if __name__ == "__main__":
    main()
