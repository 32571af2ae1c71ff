#!/bin/sh
# `make fuzz`: runs every fuzz target for FUZZ_SECONDS seconds (default 60), one after the
# other (one process each: the machine is shared), and prints one line per target with the
# executions and the result. Exits non-zero when any target found a crash, a timeout or an
# out-of-memory; the input is then in fuzz/artifacts/<target>/ (add it to
# fuzz/regressions/<target>/ with the fix, so that `make test` replays it).
#
# FUZZ_TARGETS="ini spec" limits the run; FUZZ_TIMEOUT (seconds per input, default 10) and
# FUZZ_RSS_MB (default 2048) are libFuzzer's -timeout and -rss_limit_mb.
set -u
cd "$(dirname "$0")"

SECONDS_EACH=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
TARGETS=${FUZZ_TARGETS:-"ini spec snapshot dumpdir tar_stderr elf restore_reader verify_structure"}

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked || exit 1
fi
# libFuzzer needs nightly's -Z flags: nightly when rustup has it, else stable unlocked.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ="cargo +nightly fuzz"
else
    FUZZ="cargo fuzz"
    export RUSTC_BOOTSTRAP=1
fi

# Debug assertions on (-a): an arithmetic overflow is a crash too, as in the debug build.
echo "building the fuzz targets ($FUZZ build -O -a)"
$FUZZ build -O -a || exit 1

mkdir -p work
status=0
summary=""
for target in $TARGETS; do
    # New inputs go to work/<target> (not committed); the seeds and past crashes are read.
    mkdir -p "work/$target" "artifacts/$target"
    dirs="work/$target corpus/$target"
    [ -d "regressions/$target" ] && dirs="$dirs regressions/$target"
    log="work/$target.log"
    echo "fuzzing $target for ${SECONDS_EACH}s (log: fuzz/$log)"
    # shellcheck disable=SC2086 # $dirs and $FUZZ are word lists
    $FUZZ run -O -a "$target" $dirs -- \
        -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
        -print_final_stats=1 >"$log" 2>&1
    code=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs="?"
    if [ "$code" -eq 0 ]; then
        result="ok"
    else
        status=1
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            result="TIMEOUT"
        elif grep -q 'ERROR: libFuzzer: out-of-memory\|malloc limit' "$log"; then
            result="OUT OF MEMORY"
        else
            result="CRASH"
        fi
        input=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n 1)
        [ -n "$input" ] && result="$result: fuzz/$input"
    fi
    line=$(printf '%-18s %12s executions  %s' "$target" "$execs" "$result")
    echo "$line"
    summary="$summary$line
"
done
echo
echo "fuzz summary (${SECONDS_EACH}s per target):"
printf '%s' "$summary"
exit $status
