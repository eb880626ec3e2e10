"""A random-walk strategy for nas-host, written in Python.

It starts from a random point; each proposal changes one active dimension
of the best point found so far (keeping the space's conditions), and a
result that beats the best becomes the new starting point. Failed, pruned
and infeasible results are ignored. It never finishes.

Built into a WebAssembly component with componentize-py (see README.md).
"""

import math
import random

from wit_world import exports
from wit_world.imports import types as t

# componentize-py calls each export on a fresh instance of its class and
# never runs __init__, so the strategy's state lives at module level.
STATE = {}


def _active(dim, bindings):
    """Whether `dim` exists given the earlier `bindings` (its condition holds)."""
    if dim.condition is None:
        return True
    for b in bindings:
        if b.name == dim.condition.parent:
            return isinstance(b.value, t.Value_Categorical) and b.value.value in dim.condition.labels
    return False


def _draw(domain, rng):
    """A uniform value of `domain` (log-uniform where it says so)."""
    if isinstance(domain, t.Domain_Categorical):
        return t.Value_Categorical(rng.choice(domain.value))
    r = domain.value
    if isinstance(domain, t.Domain_Integer):
        if r.log:
            v = int(round(math.exp(rng.uniform(math.log(r.low), math.log(r.high)))))
            return t.Value_Integer(min(max(v, r.low), r.high))
        return t.Value_Integer(rng.randint(r.low, r.high))
    if r.log:
        return t.Value_Real(math.exp(rng.uniform(math.log(r.low), math.log(r.high))))
    return t.Value_Real(rng.uniform(r.low, r.high))


def _complete(dims, keep, rng):
    """An assignment over the active dimensions: values from `keep` where present, else drawn."""
    bindings = []
    for dim in dims:
        if _active(dim, bindings):
            value = keep.get(dim.name)
            bindings.append(t.Binding(dim.name, value if value is not None else _draw(dim.domain, rng)))
    return bindings


class Metadata(exports.Metadata):
    def info(self):
        return t.PluginInfo(
            name="python-random-walk",
            version="0.1.0",
            description="Random walk from the best point so far, one dimension at a time (Python)",
            config=[],
        )


class Strategy(exports.Strategy):
    def init(self, dimensions, objectives, config, seed):
        STATE["dims"] = dimensions
        STATE["objective"] = objectives[0]
        STATE["rng"] = random.Random(seed)
        STATE["best"] = None  # (score, assignment)

    def ask(self, max):
        dims, rng, best = STATE["dims"], STATE["rng"], STATE["best"]
        out = []
        for _ in range(max):
            if best is None:
                bindings = _complete(dims, {}, rng)
            else:
                keep = {b.name: b.value for b in best[1]}
                active = [b.name for b in best[1]]
                del keep[rng.choice(active)]
                bindings = _complete(dims, keep, rng)
            out.append(t.Proposal(bindings, None, None, "walk"))
        return out

    def tell(self, results):
        objective = STATE["objective"]
        for r in results:
            if r.status != t.TrialStatus.COMPLETED:
                continue
            values = [m.value for m in r.metrics if m.name == objective.metric]
            if not values or not math.isfinite(values[0]):
                continue
            score = values[0] if objective.direction == t.Direction.MAXIMIZE else -values[0]
            if STATE["best"] is None or score > STATE["best"][0]:
                STATE["best"] = (score, r.proposal.assignment)
