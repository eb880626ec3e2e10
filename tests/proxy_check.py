"""The zero-cost proxies' reference: each case folder written by
tests/proxies.rs holds a network, its initial weights, a minibatch and
nas-host's scores; this computes every proxy again in PyTorch, in double
precision, following the zero-cost-proxies code of Abdelfattah et al.
(2021) and NASWOT's of Mellor et al. (2021), and prints one line per case:
`NAME: ok` or what disagrees.

    python3 tests/proxy_check.py CASES_DIR
"""

import copy
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers"))
from torch_graph import Graph  # noqa: E402

ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU)
TOLERANCE = {"naswot": 1e-3, "synflow": 1e-4, "grad_norm": 1e-4, "snip": 1e-4, "jacob_cov": 1e-3}


def build(case):
    c, h, w = case["task"]
    net = Graph(case["network"], c, h, w).double()
    params = case["params"]
    with torch.no_grad():
        for i, mod in enumerate(net.mods):
            names = {nn.Conv2d: ("weight", "bias"), nn.Linear: ("weight", "bias"),
                     nn.BatchNorm2d: ("gamma", "beta"), nn.BatchNorm1d: ("gamma", "beta")}.get(type(mod))
            if names is None:
                continue
            for attr, ours in zip(("weight", "bias"), names):
                p = getattr(mod, attr)
                if p is None:
                    continue
                p.copy_(torch.tensor(params[f"n{i}.{ours}"], dtype=torch.float64).reshape(p.shape))
    return net


def train_mode(net):
    """Batch statistics in batch-norms; dropout off, as nas-host scores."""
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    return net


def layers(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def naswot(net, x):
    n = x.shape[0]
    k = np.zeros((n, n))

    def hook(module, inp, out):
        nonlocal k
        c = (inp[0].reshape(n, -1) > 0).double()
        k += (c @ c.t() + (1.0 - c) @ (1.0 - c).t()).numpy()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, ACTIVATIONS)]
    with torch.no_grad():
        train_mode(net)(x)
    for h in handles:
        h.remove()
    if not handles:
        return None
    sign, logdet = np.linalg.slogdet(k)
    return None if sign == 0 else float(logdet)


def jacob_cov(net, x):
    x = x.clone().requires_grad_(True)
    y = train_mode(net)(x)
    y.backward(torch.ones_like(y))
    jacob = x.grad.reshape(x.shape[0], -1).numpy()
    if np.any(jacob.std(axis=1) == 0):
        return None
    corrs = np.corrcoef(jacob)
    v, _ = np.linalg.eig(corrs)
    k = 1e-5
    return float(-np.sum(np.log(v.real + k) + 1.0 / (v.real + k)))


def gradients(net, x, labels):
    net.zero_grad()
    loss = nn.CrossEntropyLoss()(train_mode(net)(x), labels)
    loss.backward()
    grad_norm = sum(float(m.weight.grad.norm()) for m in layers(net) if m.weight.grad is not None)
    snip = sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in layers(net) if m.weight.grad is not None)
    return grad_norm, snip


def synflow(net, task):
    net = copy.deepcopy(net)
    for i, m in enumerate(net.mods):
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            net.mods[i] = nn.Identity()
    with torch.no_grad():
        for p in net.state_dict().values():
            p.abs_()
    net.zero_grad()
    net.eval()
    y = net(torch.ones([1] + list(task), dtype=torch.float64))
    torch.sum(y).backward()
    return sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in layers(net) if m.weight.grad is not None)


def global_max_pool(case):
    return any(n["op"] == "GlobalMaxPool" for n in case["network"]["nodes"])


def check(case):
    n = case["batch"]
    x = torch.tensor(case["x"], dtype=torch.float64).reshape([n] + case["task"])
    labels = torch.tensor(case["labels"], dtype=torch.long)
    net = build(case)
    grad_norm, snip = gradients(copy.deepcopy(net), x, labels)
    theirs = {
        "naswot": naswot(copy.deepcopy(net), x),
        "jacob_cov": jacob_cov(copy.deepcopy(net), x),
        "grad_norm": grad_norm,
        "snip": snip,
        "synflow": synflow(net, case["task"]),
    }
    if global_max_pool(case):
        # On synflow's input of ones a global max pool has tied maxima, where
        # the gradient is a subgradient: candle spreads it over the tied
        # positions, PyTorch routes it to one. Either is synflow.
        del theirs["synflow"]
    problems = []
    for name, ref in theirs.items():
        ours = case["ours"].get(name)
        if ref is None or (isinstance(ref, float) and not math.isfinite(ref)):
            if ours is not None:
                problems.append(f"{name}: nas-host {ours}, PyTorch undefined")
            continue
        if ours is None:
            problems.append(f"{name}: nas-host undefined, PyTorch {ref}")
            continue
        tol = TOLERANCE[name]
        if abs(ours - ref) > tol * max(1.0, abs(ref)):
            problems.append(f"{name}: nas-host {ours}, PyTorch {ref} (relative tolerance {tol})")
    return problems


def main():
    root = sys.argv[1]
    failed = 0
    for name in sorted(os.listdir(root)):
        with open(os.path.join(root, name)) as f:
            case = json.load(f)
        problems = check(case)
        if problems:
            failed += 1
            print(f"{name}: " + "; ".join(problems))
        else:
            print(f"{name}: ok")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
