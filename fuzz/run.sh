#!/bin/sh
# Builds every fuzz/*_fuzz.c as a libFuzzer target (clang, with AddressSanitizer and
# UndefinedBehaviorSanitizer) and runs each for N seconds (default 60). Fails when any target finds a
# crash, a sanitizer report, a leak or a timeout; the input that did it is kept in build-fuzz/.
#
# Each target declares in comment lines at its top what it needs:
#   // sources: csrc/core/... .c files to compile with it (the core, no Lua)
#   // libs: -lpng -lz            (optional) libraries to link
#   // cflags: -DNAME=value       (optional) extra compiler flags
#   // seeds: folder ...          (optional) folders of sample inputs to start the corpus from
# Usage: fuzz/run.sh [seconds] [target names...]   e.g. fuzz/run.sh 10 png_fuzz
# FUZZ_SEED=n fixes libFuzzer's random seed, so that a run retraces the inputs of an earlier run on the
# same sources (CI uses it: a finding there can be replayed here); without it every run explores anew.
set -eu
cd "$(dirname "$0")/.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
out=${FUZZ_BUILD_DIR:-build-fuzz}
cc=${CC_FUZZ:-clang}
seed_flag=${FUZZ_SEED:+-seed=$FUZZ_SEED}
mkdir -p "$out"

field() {  # field NAME FILE: the value of "// NAME: ..." lines, joined
  sed -n "s|^// $1:[[:space:]]*||p" "$2" | tr '\n' ' '
}

targets=""
if [ $# -gt 0 ]; then
  for name in "$@"; do targets="$targets fuzz/${name%.c}.c"; done
else
  targets=$(ls fuzz/*_fuzz.c)
fi

failed=""
for src in $targets; do
  name=$(basename "$src" .c)
  sources=$(field sources "$src")
  if [ -z "$sources" ]; then
    echo "fuzz: $src has no '// sources:' line" >&2
    failed="$failed $name"
    continue
  fi
  echo "== $name: building"
  # shellcheck disable=SC2086  # the fields are word lists
  if ! $cc -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -fno-omit-frame-pointer -Icsrc/core $(field cflags "$src") "$src" $sources -o "$out/$name" \
      $(field libs "$src") -lm -lpthread; then
    failed="$failed $name(build)"
    continue
  fi
  corpus="$out/corpus/$name"
  mkdir -p "$corpus"
  for seed_dir in $(field seeds "$src"); do
    [ -d "$seed_dir" ] && cp "$seed_dir"/* "$corpus"/ 2>/dev/null || true
  done
  echo "== $name: fuzzing for ${seconds}s"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$out/$name" $seed_flag -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/$name-" "$corpus" > "$out/$name.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/$name.log" | sed "s|^|   |"
  else
    echo "fuzz: $name FAILED; the end of $out/$name.log:" >&2
    tail -40 "$out/$name.log" >&2
    failed="$failed $name"
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz: failures:$failed" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a finding"
