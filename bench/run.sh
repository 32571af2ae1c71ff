#!/usr/bin/env bash
# The `make bench` benchmark: our `aa` (TarInternal and TarExternal) against the reference
# command lines, for every backup type, on the same warm data, alternating the commands.
#
# Environment:
#   AA_BENCH_DIR  cache and work directory (default /tmp/aa-bench; the corpora are kept there)
#   REPS          repetitions per command (default 5); medians are printed
#   XZ_REPS       repetitions of the xz commands (default 1: one xz run of the corpus takes minutes)
#   TYPES         backup types to run (default "tar gz zst bz2 xz s3"; s3: targz to a local
#                 moto_server against targz to a directory, see below)
#   AA            the aa binary (default $CARGO_TARGET_DIR or ./target, then release/aa)
#   RESULTS       where the Markdown table goes as well (default $AA_BENCH_DIR/results.md)
#   EXTRAS        "no" skips the 200k-files, start-up and incremental sections (default yes)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${AA_BENCH_DIR:-/tmp/aa-bench}
REPS=${REPS:-5}
XZ_REPS=${XZ_REPS:-1}
TYPES=${TYPES:-tar gz zst bz2 xz s3}
AA=${AA:-${CARGO_TARGET_DIR:-$ROOT/target}/release/aa}
RESULTS=${RESULTS:-$B/results.md}
EXTRAS=${EXTRAS:-yes}
THREADS=$(nproc)

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$AA" ] || die "no aa binary at $AA (run 'make bench', or set AA)"

# ---- tools --------------------------------------------------------------------------------
missing=()
for tool in pigz pbzip2 zstd xz bzip2 python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
        { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${missing[@]}" >/dev/null; } ||
        die "cannot install ${missing[*]}"
fi

# ---- corpora --------------------------------------------------------------------------------
mkdir -p "$B/out" "$B/cfg/archive_specs" "$B/cfg/storage"
echo "bench: corpora in $B (generated once, deterministic)"
python3 "$ROOT/bench/gen_corpus.py" home "$B"
[ "$EXTRAS" = no ] || python3 "$ROOT/bench/gen_corpus.py" tiny "$B"
python3 "$ROOT/bench/gen_corpus.py" restore "$B"   # in case an earlier run was interrupted
for corpus in home tiny; do
    cat > "$B/$corpus.aa" <<EOF
[Content]
path = $B
include-files = $corpus
exclude-files =

[Archive]
EOF
done
# Warm the page cache: every run reads the same warm data.
tar -cf - -C "$B" home $([ "$EXTRAS" = no ] || echo tiny) | cat > /dev/null

# ---- measuring ------------------------------------------------------------------------------
# run LABEL CMD...: runs CMD with an empty output directory and records
# "wall_s cpu_s maxrss_kb size_bytes" in $B/samples/LABEL. The output directory is emptied
# and flushed to disk before each run, so no run pays for an earlier run's write-back.
mkdir -p "$B/samples"
rm -f "$B"/samples/*
run() {
    local label=$1; shift
    rm -rf "$B/out" && mkdir -p "$B/out"
    sync
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f "%U %S %M" -o "$B/time.txt" "$@" >/dev/null 2>"$B/stderr.txt" || {
        # aa exits 1 after a warning; only a missing backup is a failure.
        true
    }
    t1=$(date +%s%N)
    local size
    if [ -n "${SIZE_CMD:-}" ]; then
        # An object in a store: SIZE_CMD prints its size, and fails when there is none.
        size=$(eval "$SIZE_CMD") || { cat "$B/stderr.txt" >&2; die "$label produced no output"; }
    else
        local out=${SIZE_OF:-}
        [ -n "$out" ] || out=$(find "$B/out" -type f ! -name '*._partial' | head -1)
        [ -n "$out" ] || { cat "$B/stderr.txt" >&2; die "$label produced no output"; }
        size=$(stat -c %s "$out")
    fi
    read -r user sys rss < <(tail -1 "$B/time.txt")
    echo "$(( (t1 - t0) / 1000000 )) $user $sys $rss $size" >> "$B/samples/$label"
}

aa_run() { # aa_run LABEL CORPUS ARCHIVER
    run "$1" "$AA" --user-config-dir "$B/cfg" --dest-dir "$B/out" -a "$3" "$B/$2.aa"
}
sh_run() { # sh_run LABEL SHELL-COMMAND
    run "$1" bash -c "$2"
}

# median FILE COLUMN: the median of a column of a sample file (lower middle for even counts)
median() {
    local col=$2
    awk -v c="$col" '{ if (c == 2) print $2 + $3; else print $c }' "$1" | sort -g |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# ---- the table ------------------------------------------------------------------------------
{
    echo "| type | command | wall s | CPU s | peak MiB | size MB | wall ours/ref | size ours/ref |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
} > "$RESULTS.tmp"

# report TYPE REF LABEL...: one table row per label; ratios against REF
report() {
    local type=$1 ref=$2; shift 2
    local ref_wall ref_size
    ref_wall=$(median "$B/samples/$ref" 1)
    ref_size=$(median "$B/samples/$ref" 5)
    for label in "$@"; do
        local f=$B/samples/$label wall cpu rss size
        wall=$(median "$f" 1); cpu=$(median "$f" 2); rss=$(median "$f" 4); size=$(median "$f" 5)
        awk -v t="$type" -v l="$label" -v w="$wall" -v c="$cpu" -v r="$rss" -v s="$size" \
            -v rw="$ref_wall" -v rs="$ref_size" -v isref="$([ "$label" = "$ref" ] && echo 1 || echo 0)" \
            'BEGIN { gsub(/\|/, "\\|", l); printf "| %s | `%s` | %.2f | %.2f | %.1f | %.1f | %s | %s |\n", t, l, w / 1000, c, r / 1024, s / 1e6,
                     isref ? "(ref)" : sprintf("%.2f", w / rw), isref ? "(ref)" : sprintf("%.3f", s / rs) }' \
            >> "$RESULTS.tmp"
    done
}

# alternate REPS LABEL... : runs the commands of a group in turn, REPS times
declare -A CMD
alternate() {
    local reps=$1; shift
    for ((i = 1; i <= reps; i++)); do
        for label in "$@"; do
            echo "bench: [$i/$reps] $label" >&2
            eval "${CMD[$label]}"
        done
    done
}

# ---- S3: the object store, a local moto_server --------------------------------------------------
# Started for the s3 rows and stopped on exit. moto is a Python server: its own speed is the
# row "moto: multipart PUT", the backup's bytes uploaded by a client that does nothing else
# (bench/s3.py, same part size and parallelism as aa).
MOTO_PID=
S3_NOTE=
MOTO_VENV=${AA_MOTO_VENV:-${CARGO_TARGET_DIR:-$ROOT/target}/moto-venv}
stop_moto() { [ -z "$MOTO_PID" ] || { kill "$MOTO_PID" 2>/dev/null; wait "$MOTO_PID" 2>/dev/null; MOTO_PID=; }; }
trap stop_moto EXIT
start_moto() {
    AA_MOTO_VENV=$MOTO_VENV "$ROOT/tests/setup-moto.sh" || die "cannot install moto (tests/setup-moto.sh)"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$B/moto.log" 2>&1 &
    MOTO_PID=$!
    S3_ENDPOINT=http://127.0.0.1:$port
    python3 "$ROOT/bench/s3.py" wait "$S3_ENDPOINT" || { cat "$B/moto.log" >&2; die "moto_server did not start"; }
    python3 "$ROOT/bench/s3.py" mkbucket "$S3_ENDPOINT" aa-bench
}
# moto's CPU time so far (user + system), in seconds.
moto_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$MOTO_PID/stat"; }
# s3_run LABEL ARCHIVER: aa backing up the home corpus to s3://aa-bench/home; moto's CPU time
# for the run goes to samples/LABEL.moto-cpu.
s3_run() {
    python3 "$ROOT/bench/s3.py" delete "$S3_ENDPOINT" aa-bench home/home.tar.gz
    local before
    before=$(moto_cpu)
    SIZE_CMD="python3 $ROOT/bench/s3.py size $S3_ENDPOINT aa-bench home/home.tar.gz" \
        run "$1" env AWS_ENDPOINT_URL="$S3_ENDPOINT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        "$AA" --user-config-dir "$B/cfg" --dest-dir s3://aa-bench/home -a "$2" "$B/home.aa"
    awk -v a="$before" -v b="$(moto_cpu)" 'BEGIN { printf "%.2f\n", b - a }' >> "$B/samples/$1.moto-cpu"
}
# put_run LABEL FILE: bench/s3.py uploading FILE, the same bytes as aa's backup.
put_run() {
    python3 "$ROOT/bench/s3.py" delete "$S3_ENDPOINT" aa-bench put/home.tar.gz
    local before
    before=$(moto_cpu)
    SIZE_OF=$2 run "$1" python3 "$ROOT/bench/s3.py" put "$S3_ENDPOINT" aa-bench put/home.tar.gz "$2"
    awk -v a="$before" -v b="$(moto_cpu)" 'BEGIN { printf "%.2f\n", b - a }' >> "$B/samples/$1.moto-cpu"
}

H="-C $B home"
P=$THREADS
for type in $TYPES; do
    case $type in
    tar)
        CMD[tar_internal]="aa_run tar_internal home tar_internal"
        CMD[tar_external]="aa_run tar_external home tar"
        CMD["tar -cf"]="sh_run 'tar -cf' 'tar -cf $B/out/ref.tar $H'"
        alternate "$REPS" tar_internal tar_external "tar -cf"
        report tar "tar -cf" tar_internal tar_external "tar -cf"
        ;;
    gz)
        CMD[targz_internal]="aa_run targz_internal home targz_internal"
        CMD[targz_external]="aa_run targz_external home targz"
        CMD["tar -c | pigz -p$P"]="sh_run 'tar -c | pigz -p$P' 'tar -cf - $H | pigz -p$P > $B/out/ref.tar.gz'"
        CMD["tar -czf"]="sh_run 'tar -czf' 'tar -czf $B/out/ref.tar.gz $H'"
        alternate "$REPS" targz_internal targz_external "tar -c | pigz -p$P" "tar -czf"
        report targz "tar -c | pigz -p$P" targz_internal targz_external "tar -c | pigz -p$P" "tar -czf"
        ;;
    zst)
        CMD[tarzst_internal]="aa_run tarzst_internal home tarzst_internal"
        CMD[tarzst_external]="aa_run tarzst_external home tarzst"
        CMD["tar -c | zstd -T$P"]="sh_run 'tar -c | zstd -T$P' 'tar -cf - $H | zstd -q -T$P > $B/out/ref.tar.zst'"
        alternate "$REPS" tarzst_internal tarzst_external "tar -c | zstd -T$P"
        report tarzst "tar -c | zstd -T$P" tarzst_internal tarzst_external "tar -c | zstd -T$P"
        ;;
    bz2)
        CMD[tarbz2_internal]="aa_run tarbz2_internal home tarbz2_internal"
        CMD[tarbz2_external]="aa_run tarbz2_external home tarbz2"
        CMD["tar -c | pbzip2 -p$P"]="sh_run 'tar -c | pbzip2 -p$P' 'tar -cf - $H | pbzip2 -p$P > $B/out/ref.tar.bz2'"
        alternate "$REPS" tarbz2_internal tarbz2_external "tar -c | pbzip2 -p$P"
        report tarbz2 "tar -c | pbzip2 -p$P" tarbz2_internal tarbz2_external "tar -c | pbzip2 -p$P"
        ;;
    xz)
        CMD[tarxz_internal]="aa_run tarxz_internal home tarxz_internal"
        CMD[tarxz_external]="aa_run tarxz_external home tarxz"
        CMD["tar -c | xz -T$P"]="sh_run 'tar -c | xz -T$P' 'tar -cf - $H | xz -T$P > $B/out/ref.tar.xz'"
        alternate "$XZ_REPS" tarxz_internal tarxz_external "tar -c | xz -T$P"
        report tarxz "tar -c | xz -T$P" tarxz_internal tarxz_external "tar -c | xz -T$P"
        ;;
    s3)
        start_moto
        # The bytes the put baseline uploads: a backup of the same data, kept aside.
        rm -rf "$B/s3-payload" && mkdir -p "$B/s3-payload"
        "$AA" --user-config-dir "$B/cfg" --dest-dir "$B/s3-payload" -a targz_internal "$B/home.aa" \
            >/dev/null 2>&1 || die "s3: the payload backup failed"
        payload=$B/s3-payload/home.tar.gz
        CMD["targz_internal to dir"]="aa_run 'targz_internal to dir' home targz_internal"
        CMD["targz_internal to s3"]="s3_run 'targz_internal to s3' targz_internal"
        CMD["targz to dir"]="aa_run 'targz to dir' home targz"
        CMD["targz to s3"]="s3_run 'targz to s3' targz"
        CMD["moto: multipart PUT"]="put_run 'moto: multipart PUT' $payload"
        alternate "$REPS" "targz_internal to dir" "targz_internal to s3" "moto: multipart PUT" "targz to dir" "targz to s3"
        report "targz_internal, S3" "targz_internal to dir" "targz_internal to dir" "targz_internal to s3" "moto: multipart PUT"
        report "targz, S3" "targz to dir" "targz to dir" "targz to s3"
        moto_rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$MOTO_PID/status")
        S3_NOTE="S3 rows: to a local \`moto_server\` ($("$MOTO_VENV/bin/python" -c 'import importlib.metadata as m; print("moto", m.version("moto"))'), one Python process on this machine, sharing its $(nproc) cores) against the same backup to a directory; \`moto: multipart PUT\` uploads the same bytes (the backup, kept aside) with bench/s3.py, 8 MiB parts, 4 in flight (what the server can take; aa sends one part at a time). Peak MiB is aa's own (the client), /usr/bin/time %M. moto's CPU time per run (median): $(for l in "targz_internal to s3" "moto: multipart PUT" "targz to s3"; do printf '%s %ss; ' "\`$l\`" "$(median "$B/samples/$l.moto-cpu" 1)"; done)moto's peak resident set over all runs: $moto_rss MiB."
        stop_moto
        rm -rf "$B/s3-payload"
        ;;
    *) die "unknown type $type" ;;
    esac
done

# ---- restore: TarInternal's restore against GNU tar -x of the same archive -------------------
# One backup per type is made first; both then extract it into an empty directory. The size
# column is the archive's.
restore_rows=()
for type in $TYPES; do
    case $type in
    tar) archiver=tar_internal ;;
    gz) archiver=targz_internal ;;
    zst) archiver=tarzst_internal ;;
    *) continue ;;
    esac
    rm -rf "$B/restore-cfg" "$B/restore-src" && mkdir -p "$B/restore-cfg/storage" "$B/restore-src"
    "$AA" --user-config-dir "$B/restore-cfg" --dest-dir "$B/restore-src" -a "$archiver" "$B/home.aa" \
        >/dev/null 2>&1 || die "restore: the $archiver backup failed"
    archive=$(find "$B/restore-src" -type f -name 'home.*' | head -1)
    [ -n "$archive" ] || die "restore: no $archiver backup"
    cp "$archive" "$B/restore-$type.archive"
    ours="restore $archiver"
    ref="restore: tar -xf ($type)"
    CMD[$ours]="SIZE_OF=$B/restore-$type.archive run '$ours' $AA --user-config-dir $B/restore-cfg --dest-dir $B/restore-src -a $archiver --restore $B/home.aa --target $B/out/tree"
    CMD[$ref]="SIZE_OF=$B/restore-$type.archive run '$ref' tar -xf $archive -C $B/out"
    alternate "$REPS" "$ours" "$ref"
    report "restore $type" "$ref" "$ours" "$ref"
done
rm -rf "$B/restore-cfg" "$B/restore-src" "$B"/restore-*.archive

if [ "$EXTRAS" != no ]; then
# ---- 200,000 tiny files: per-file cost and memory growth ------------------------------------
T="-C $B tiny"
CMD[tiny_tar_internal]="aa_run tiny_tar_internal tiny tar_internal"
CMD[tiny_tar_external]="aa_run tiny_tar_external tiny tar"
CMD["tiny: tar -cf"]="sh_run 'tiny: tar -cf' 'tar -cf $B/out/ref.tar $T'"
CMD[tiny_targz_internal]="aa_run tiny_targz_internal tiny targz_internal"
CMD["tiny: tar -c | pigz -p$P"]="sh_run 'tiny: tar -c | pigz -p$P' 'tar -cf - $T | pigz -p$P > $B/out/ref.tar.gz'"
alternate "$REPS" tiny_tar_internal tiny_tar_external "tiny: tar -cf" tiny_targz_internal "tiny: tar -c | pigz -p$P"
report "tar, 200k files" "tiny: tar -cf" tiny_tar_internal tiny_tar_external "tiny: tar -cf"
report "targz, 200k files" "tiny: tar -c | pigz -p$P" tiny_targz_internal "tiny: tar -c | pigz -p$P"

# ---- start-up ---------------------------------------------------------------------------------
startup=()
for ((i = 0; i < 60; i++)); do
    t0=$(date +%s%N)
    "$AA" --list-providers >/dev/null
    t1=$(date +%s%N)
    startup+=($(( (t1 - t0) / 1000 )))
done
startup_us=$(printf '%s\n' "${startup[@]:10}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
providers=$("$AA" --list-providers | grep -c '^[A-Za-z]' || true)

# ---- incremental level 1 after changing 1% of the files ---------------------------------------
inc_note=""
if "$AA" --help 2>&1 | grep -q -- '--incremental'; then
    inc_note="aa has --incremental: see the rows 'incremental'."
    for label in inc_internal inc_external; do
        archiver=$([ $label = inc_internal ] && echo targz_internal || echo targz)
        for ((i = 1; i <= REPS; i++)); do
            rm -rf "$B/cfg/storage" "$B/inc" && mkdir -p "$B/cfg/storage" "$B/inc"
            "$AA" --user-config-dir "$B/cfg" --dest-dir "$B/inc" -a "$archiver" --incremental "$B/home.aa" \
                >/dev/null 2>&1 || { inc_note="$inc_note $label: not supported by this provider."; break; }
            python3 "$ROOT/bench/gen_corpus.py" mutate "$B"
            rm -rf "$B/out" && mkdir -p "$B/out"
            run "$label" "$AA" --user-config-dir "$B/cfg" --dest-dir "$B/out" -a "$archiver" --incremental "$B/home.aa"
            python3 "$ROOT/bench/gen_corpus.py" restore "$B"
        done
    done
else
    inc_note="pending: this aa has no --incremental option yet (the incremental issue)."
fi
# The reference: GNU tar level 1 against a level-0 snapshot, same 1% change.
for ((i = 1; i <= REPS; i++)); do
    rm -f "$B/level0.snar"
    tar --listed-incremental="$B/level0.snar" -cf /dev/null -C "$B" home
    python3 "$ROOT/bench/gen_corpus.py" mutate "$B"
    run "tar -g (level 1) | pigz -p$P" bash -c \
        "cp $B/level0.snar $B/level1.snar && tar --listed-incremental=$B/level1.snar -cf - $H | pigz -p$P > $B/out/l1.tar.gz"
    python3 "$ROOT/bench/gen_corpus.py" restore "$B"
done
report "incremental level 1" "tar -g (level 1) | pigz -p$P" \
    $(ls "$B/samples" | grep -x 'inc_internal\|inc_external' || true) "tar -g (level 1) | pigz -p$P"

# ---- incremental level 1 of 288,000 directories: the memory of the previous level's index -----
python3 "$ROOT/bench/gen_corpus.py" dirs "$B"
cat > "$B/dirs.aa" <<EOF
[Content]
path = $B
include-files = dirs
exclude-files =

[Archive]
EOF
for ((i = 1; i <= REPS; i++)); do
    for label in dirs_inc_internal dirs_inc_external; do
        archiver=$([ $label = dirs_inc_internal ] && echo tar_internal || echo tar)
        rm -rf "$B/cfg-dirs" "$B/inc" && mkdir -p "$B/cfg-dirs/storage" "$B/inc"
        echo "bench: [$i/$REPS] $label" >&2
        "$AA" --user-config-dir "$B/cfg-dirs" --dest-dir "$B/inc" -a "$archiver" --incremental "$B/dirs.aa" \
            >/dev/null 2>&1 || die "$label: level 0 failed"
        run "$label" "$AA" --user-config-dir "$B/cfg-dirs" --dest-dir "$B/out" -a "$archiver" --incremental "$B/dirs.aa"
    done
    echo "bench: [$i/$REPS] dirs: tar -g (level 1)" >&2
    rm -f "$B/dirs0.snar"
    tar --listed-incremental="$B/dirs0.snar" -cf /dev/null -C "$B" dirs
    run "dirs: tar -g (level 1)" bash -c \
        "cp $B/dirs0.snar $B/dirs1.snar && tar --listed-incremental=$B/dirs1.snar --format=posix -cf $B/out/l1.tar -C $B dirs"
done
report "incremental level 1, 288k directories" "dirs: tar -g (level 1)" \
    dirs_inc_internal dirs_inc_external "dirs: tar -g (level 1)"

fi

# ---- output -------------------------------------------------------------------------------------
{
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
        "$(uname -sr); corpus $(du -s --apparent-size --block-size=1M "$B/home" | cut -f1) MiB" \
        "in $(find "$B/home" -type f | wc -l) files; medians of $REPS runs (xz: $XZ_REPS)."
    echo "Peak memory: maximum resident set of the process (of the largest process of a pipeline)."
    echo
    cat "$RESULTS.tmp"
    if [ -n "$S3_NOTE" ]; then
        echo
        echo "$S3_NOTE"
    fi
    if [ "$EXTRAS" != no ]; then
        echo
        echo "Start-up, \`aa --list-providers\` with $providers providers loaded: median $(awk -v u="$startup_us" 'BEGIN { printf "%.1f", u / 1000 }') ms (50 runs)."
        echo
        echo "Incremental (aa): $inc_note"
    fi
} > "$RESULTS"
rm -f "$RESULTS.tmp"
echo
cat "$RESULTS"
