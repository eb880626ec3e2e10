#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets: config, idx, cifar, arrays, network) for SECONDS
# (default 30) from the corpus in fuzz/corpus/<target>/. New interesting
# inputs go to a scratch folder, not into the repository; a crash leaves its
# input in fuzz/artifacts/<target>/ and fails the script, and so does an
# input that takes over 2 minutes (a hang; libFuzzer's default waits 20).
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The parsers are safe Rust; coverage guidance needs no sanitizer, and
# AddressSanitizer would need a nightly compiler. The build log is kept so
# that a failure ends with its cause and the machine's disk and memory
# (a CI log shows its end); a second attempt (incremental) tells a
# transient failure, such as a download, from a real one.
build() {
    RUST_BACKTRACE=0 cargo fuzz build --sanitizer none >"$scratch/build.log" 2>&1
}
if ! build; then
    echo "fuzz: the build failed; its last lines, then disk and memory:" >&2
    grep -v -e '^ *Compiling ' -e '^ *Downloaded ' "$scratch/build.log" | tail -n 60 >&2
    df -h . >&2
    free -m >&2
    echo "fuzz: building again" >&2
    if ! build; then
        grep -v -e '^ *Compiling ' -e '^ *Downloaded ' "$scratch/build.log" | tail -n 60 >&2
        echo "fuzz: the build failed twice" >&2
        exit 1
    fi
fi
for target in config idx cifar arrays network; do
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${seconds}s"
    if ! cargo fuzz run --sanitizer none "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=120 -max_len=8192 -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        grep -v -e '^#' "$scratch/$target.log" | tail -n 80
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -e '^stat::number_of_executed_units' -e '^stat::new_units_added' "$scratch/$target.log"
done
