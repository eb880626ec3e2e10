"""Optuna's TPESampler on the problems of nas-host's strategy tests:
Branin and Hartmann-6, 100 trials, seeds 0..49, median best value after
50 and after 100 trials.

    python3 -m pip install optuna==5.0.0
    python3 bench/peers/optuna_tpe.py

Compare with `cargo test -p nas-host --test strategies -- --nocapture branin`,
which prints the same medians for nas-host's strategies.
"""

import math
import statistics

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x):
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]


def hartmann6(x):
    return -sum(
        ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6)))
        for i in range(4)
    )


PROBLEMS = [
    ("branin", branin, [(-5.0, 10.0), (0.0, 15.0)]),
    ("hartmann6", hartmann6, [(0.0, 1.0)] * 6),
]

for name, f, ranges in PROBLEMS:
    at = {50: [], 100: []}
    for seed in range(50):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(
            lambda trial: f([trial.suggest_float(f"x{i + 1}", lo, hi) for i, (lo, hi) in enumerate(ranges)]),
            n_trials=100,
        )
        values = [t.value for t in study.trials]
        for n in at:
            at[n].append(min(values[:n]))
    print(
        f"{name}: optuna {optuna.__version__} TPESampler median best over 50 seeds: "
        f"after 50 trials {statistics.median(at[50]):.6f}, after 100 {statistics.median(at[100]):.6f}"
    )
