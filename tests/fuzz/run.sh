#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang and runs each for a
# bounded time, on a copy of its seed corpus so that the tree stays as it is.
#
#   tests/fuzz/run.sh [-t SECONDS] [TARGET...]
#
# TARGET is the part of tests/fuzz/fuzz_TARGET.c after "fuzz_" (ingest,
# wsmsg, request, http); without one, every target runs.  SECONDS (default
# 30, or $FUZZ_SECONDS) is each target's time.  The binaries go to
# build-fuzz/, the server's library for them to build-fuzz/meson/.
# When a target crashes, the input is printed in hex with the report, and
# kept as build-fuzz/artifacts/TARGET/crash-* (rerun it with
# build-fuzz/fuzz_TARGET FILE).  Needs clang and libclang-rt-14-dev.
#
# Prints one line per target, "fuzz: TARGET passed ..." or "fuzz: TARGET
# FAILED ..."; exits 0 only when every target passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${FUZZ_SECONDS:-30}
targets=()
while (($#)); do
	case "$1" in
	-t)
		seconds=${2:?-t needs a number of seconds}
		shift 2
		;;
	-h | --help)
		sed -n '2,16s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	-*)
		echo "fuzz: unknown option: $1 (try --help)" >&2
		exit 2
		;;
	*)
		targets+=("$1")
		shift
		;;
	esac
done
if ((${#targets[@]} == 0)); then
	for f in tests/fuzz/fuzz_*.c; do
		t=${f#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi

cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz: $cc not found: install clang and libclang-rt-14-dev" \
		"(scripts/deps.sh)" >&2
	for t in "${targets[@]}"; do
		echo "fuzz: $t FAILED (no compiler)"
	done
	exit 1
fi
jansson=$(pkg-config --cflags --libs jansson)

out=build-fuzz
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Undefined behaviour aborts (the build says so too) with a stack.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The meson build of the server with clang, instrumented for the fuzzer,
# configured once in build-fuzz/meson; builds the libraries named.
meson_build() {
	local dir=$out/meson
	if [[ ! -f $dir/build.ninja ]]; then
		rm -rf "$dir"
		CC=$cc meson setup "$dir" --buildtype=plain \
			-Db_sanitize=address,undefined -Db_lundef=false \
			-Dc_args="-g -O1 -fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" ||
			return 1
	fi
	ninja -C "$dir" "$@"
}

failed=0
for t in "${targets[@]}"; do
	src=tests/fuzz/fuzz_$t.c
	bin=$out/fuzz_$t
	if [[ ! -f $src ]]; then
		echo "fuzz: $t FAILED (no $src)"
		failed=1
		continue
	fi

	# A target that reaches into server/ names its files in a line
	# " * fuzz-sources: FILE..." of its opening comment.  One that runs the
	# server itself links libraries of the meson build instead, built with
	# clang and the same sanitizers: " * fuzz-meson: LIBRARY..." (paths in
	# the build directory), with the pkg-config packages they need,
	# " * fuzz-packages: PACKAGE...", and flags for the linker,
	# " * fuzz-ldflags: FLAG...".
	extra=$(sed -n 's/^ \* fuzz-sources: //p' "$src")
	read -ra meson_libs <<<"$(sed -n 's/^ \* fuzz-meson: //p' "$src")"
	packages=$(sed -n 's/^ \* fuzz-packages: //p' "$src")
	ldflags=$(sed -n 's/^ \* fuzz-ldflags: //p' "$src")
	libs=()
	if ((${#meson_libs[@]})); then
		if ! meson_build "${meson_libs[@]}" >"$tmp/meson-$t.log" 2>&1; then
			tail -n 40 "$tmp/meson-$t.log"
			echo "fuzz: $t FAILED (build of the server's library)"
			failed=1
			continue
		fi
		for l in "${meson_libs[@]}"; do
			libs+=("$out/meson/$l")
		done
	fi
	link=$jansson
	if [[ -n $packages ]]; then
		# shellcheck disable=SC2086 # one package a word
		link=$(pkg-config --cflags --libs jansson $packages)
	fi
	# shellcheck disable=SC2086 # pkg-config's and extra's words are separate
	if ! "$cc" -g -O1 -Wall -Wextra -Wno-unused-parameter \
		-fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -Iingest -Iserver \
		ingest/*.c $extra "$src" "${libs[@]}" $link $ldflags -lm \
		-o "$bin"; then
		echo "fuzz: $t FAILED (build)"
		failed=1
		continue
	fi

	corpus=$tmp/$t/corpus
	artifacts=$tmp/$t/artifacts
	mkdir -p "$corpus" "$artifacts"
	if [[ -d tests/fuzz/corpus/$t ]]; then
		cp -R "tests/fuzz/corpus/$t/." "$corpus/"
	fi
	opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 -artifact_prefix="$artifacts/")
	if [[ -f tests/fuzz/$t.dict ]]; then
		opts+=(-dict="tests/fuzz/$t.dict")
	fi

	echo "fuzz: $t: $seconds s from $(find "$corpus" -type f | wc -l) seeds"
	set +e
	"$bin" "${opts[@]}" "$corpus" >"$tmp/$t/log" 2>&1
	rc=$?
	set -e
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t/log")
	if ((rc == 0)); then
		echo "fuzz: $t passed (${runs:-?} runs," \
			"corpus $(find "$corpus" -type f | wc -l) inputs)"
		continue
	fi

	failed=1
	echo "fuzz: $t: the fuzzer's report (exit $rc):"
	# The log opens with one line per new input; the report starts at the
	# sanitizer's or libFuzzer's first error line, or at the target's own
	# words ("fuzz_TARGET: ...") before it.
	start=$(grep -n -m 1 -E "ERROR|runtime error:|deadly signal|^fuzz_$t: " \
		"$tmp/$t/log" | cut -d: -f1 || true)
	if [[ -n $start ]]; then
		sed -n "$start,\$p" "$tmp/$t/log" | head -n 200 || true
	else
		tail -n 60 "$tmp/$t/log"
	fi
	keep=$out/artifacts/$t
	mkdir -p "$keep"
	for a in "$artifacts"/*; do
		[[ -f $a ]] || continue
		cp "$a" "$keep/"
		echo "fuzz: $t: input $keep/${a##*/}" \
			"($(wc -c <"$a") bytes), in hex:"
		od -An -tx1 -v "$a" | head -n 256 || true
	done
	echo "fuzz: $t FAILED (exit $rc)"
done
exit "$failed"
