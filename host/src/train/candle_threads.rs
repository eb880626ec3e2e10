//! Keeps candle's own element-wise thread pool out of the kernels' way.
//! candle 0.11 runs every element-wise op of 64Ki elements or more (in
//! training, mostly the gradient sums of its backward pass) on a pool of its
//! own beside rayon's, and each of that pool's workers spins up to 25,000
//! times after every op before it sleeps: on a 2-core machine it took a core
//! from the rayon kernels running next (22 percent of a seed-template
//! epoch's samples were that spin). With one candle thread those sums run on
//! the calling thread and the pool has no workers. Measured on the 2-core
//! development machine: a batch-32 seed-template epoch 12.0 -> 10.8 s, the
//! residual k5 network 10 percent faster (docs/performance.md).

/// The environment variable candle reads, once, when its pool starts.
const VARIABLE: &str = "CANDLE_NUM_THREADS";

/// Sets `CANDLE_NUM_THREADS=1` unless the user set it; returns the value in
/// force. Call it first thing in `main`, before any other thread starts
/// (setting the environment is only sound then) and before the first
/// candle op.
pub fn serial_candle_elementwise() -> String {
    match std::env::var(VARIABLE) {
        Ok(value) => value,
        Err(_) => {
            std::env::set_var(VARIABLE, "1");
            "1".into()
        }
    }
}
