// Random search for nas-host, written in JavaScript: uniform over the active
// dimensions (log scales respected, conditions kept), from the run's seed.
// It never finishes. Built into a WebAssembly component with componentize-js
// (see README.md).

let dims = [];
let state = 1n;

// xorshift64*: a small seeded generator (the component must not use other randomness).
function nextU64() {
  state ^= state >> 12n;
  state ^= (state << 25n) & 0xffffffffffffffffn;
  state ^= state >> 27n;
  return (state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
}

// A uniform number in [0, 1).
function uniform() {
  return Number(nextU64() >> 11n) / 2 ** 53;
}

function active(dim, bindings) {
  if (!dim.condition) return true;
  const parent = bindings.find((b) => b.name === dim.condition.parent);
  return !!parent && parent.value.tag === 'categorical' && dim.condition.labels.includes(parent.value.val);
}

function draw(domain) {
  if (domain.tag === 'categorical') {
    const labels = domain.val;
    return { tag: 'categorical', val: labels[Math.floor(uniform() * labels.length)] };
  }
  const { low, high, log } = domain.val;
  if (domain.tag === 'integer') {
    const [lo, hi] = [Number(low), Number(high)];
    const v = log
      ? Math.round(Math.exp(Math.log(lo) + uniform() * (Math.log(hi) - Math.log(lo))))
      : lo + Math.floor(uniform() * (hi - lo + 1));
    return { tag: 'integer', val: BigInt(Math.min(Math.max(v, lo), hi)) };
  }
  const v = log ? Math.exp(Math.log(low) + uniform() * (Math.log(high) - Math.log(low))) : low + uniform() * (high - low);
  return { tag: 'real', val: v };
}

export const metadata = {
  info() {
    return {
      name: 'js-random-search',
      version: '0.1.0',
      description: 'Uniform random search over the active dimensions (JavaScript)',
      config: [],
    };
  },
};

export const strategy = {
  init(dimensions, _objectives, _config, seed) {
    dims = dimensions;
    // A WIT u64 arrives as a BigInt; xorshift needs a non-zero state.
    state = (BigInt(seed) ^ 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn || 1n;
  },
  ask(max) {
    const out = [];
    for (let i = 0; i < max; i++) {
      const bindings = [];
      for (const dim of dims) {
        if (active(dim, bindings)) bindings.push({ name: dim.name, value: draw(dim.domain) });
      }
      out.push({ assignment: bindings, budget: undefined, resumeFrom: undefined, tag: 'js' });
    }
    return out;
  },
  tell(_results) {},
};
