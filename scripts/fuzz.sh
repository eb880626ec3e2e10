#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets: config, idx, cifar) for SECONDS
# (default 30) from the corpus in fuzz/corpus/<target>/. New interesting
# inputs go to a scratch folder, not into the repository; a crash leaves its
# input in fuzz/artifacts/<target>/ and fails the script.
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
# The parsers are safe Rust; coverage guidance needs no sanitizer, and
# AddressSanitizer would need a nightly compiler.
cargo fuzz build --sanitizer none
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in config idx cifar; do
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${seconds}s"
    if ! cargo fuzz run --sanitizer none "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        grep -v -e '^#' "$scratch/$target.log" | tail -n 80
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -e '^stat::number_of_executed_units' -e '^stat::new_units_added' "$scratch/$target.log"
done
