#!/usr/bin/env bash
# Runs every test of kendali, from a fresh Debian 12 machine on:
#
#   1. scripts/deps.sh (installs what is missing; needs root then)
#   2. build in build-test/ with warnings as errors
#   3. unit tests:        meson test -C build-test --suite unit
#   4. integration tests: pytest tests/integration, against build-test/server/kendali
#   5. the demo feed's self-check (tools/demofeed.py --dry-run)
#   6. browser tests:     node --test in tests/browser (headless Chromium driven by
#                         playwright-core), against build-test/server/kendali; first
#                         scripts/deps.sh --browser and npm ci there
#   7. sanitized build:   build-asan/ with gcc's AddressSanitizer and
#                         UndefinedBehaviorSanitizer; there the unit tests, then
#                         the integration tests against build-asan/server/kendali,
#                         every sanitizer report in a server's stderr counting as
#                         one failure
#   8. fuzzing:           each libFuzzer target of tests/fuzz/ (clang) for
#                         $FUZZ_SECONDS (default 30) on a copy of its seeds, one
#                         test each (tests/fuzz/run.sh)
#
# docs/testing.md says how to run one stage alone.
#
# Every stage runs even when an earlier one failed (the tests need the build,
# so they are skipped when it failed).  The last line is the total over all
# stages, "N passed, N failed, N skipped", with every skipped test named
# above it; a stage that could not run at all, collected nothing or planned
# nothing counts as one failure.  Exit status 0 only when nothing failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

passed=0
failed=0
skipped=0
skips=() # "stage: test (reason)" of each skipped test
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stage() { printf '\n==== %s\n' "$*"; }
note() { printf 'test.sh: %s\n' "$*"; }

# Runs a command, shows its output, keeps a copy in $tmp/out; sets rc.
run() {
	set +e
	"$@" 2>&1 | tee "$tmp/out"
	rc=${PIPESTATUS[0]}
	set -e
}

# Adds a stage's counts to the totals and says them.
tally() {
	local label=$1 p=$2 f=$3 s=$4
	note "$label: $p passed, $f failed, $s skipped"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}

# Adds up the summary of `meson test` in $tmp/out (exit status rc) under a
# label.  A TAP program that plans nothing ("1..0") is a skip to meson; here
# it is a failure, since a data-driven test that lost its cases looks so.
count_meson() {
	local label=$1 ok xfail fail xpass tmo skip p f line
	ok=$(sed -n 's/^Ok: *\([0-9][0-9]*\).*/\1/p' "$tmp/out" | tail -n 1)
	if [[ -n $ok ]]; then
		xfail=$(sed -n 's/^Expected Fail: *\([0-9][0-9]*\).*/\1/p' "$tmp/out" | tail -n 1)
		fail=$(sed -n 's/^Fail: *\([0-9][0-9]*\).*/\1/p' "$tmp/out" | tail -n 1)
		xpass=$(sed -n 's/^Unexpected Pass: *\([0-9][0-9]*\).*/\1/p' "$tmp/out" | tail -n 1)
		tmo=$(sed -n 's/^Timeout: *\([0-9][0-9]*\).*/\1/p' "$tmp/out" | tail -n 1)
		skip=$(sed -n 's/^Skipped: *\([0-9][0-9]*\).*/\1/p' "$tmp/out" | tail -n 1)
		p=$((ok + ${xfail:-0}))
		f=$((${fail:-0} + ${xpass:-0} + ${tmo:-0} + ${skip:-0}))
		# Meson's lines "N/M suite / name SKIP ...": each one named.
		while IFS= read -r line; do
			note "$label: $line planned nothing (a failure here)"
		done < <(grep -E '^ *[0-9]+/[0-9]+ .* SKIP ' "$tmp/out" | sed 's/  */ /g' || true)
		if ((rc != 0 && f == 0)); then f=1; fi
		tally "$label" "$p" "$f" 0
	elif ((rc == 0)); then
		note "$label: none defined"
	else
		note "$label could not run (exit $rc)"
		failed=$((failed + 1))
	fi
}

# Adds up the summary of pytest in $tmp/out (exit status rc) under a label;
# pytest runs with -rs, so that each skip is listed with its reason
# ("SKIPPED [1] file:line: reason").  Nothing collected (exit 5) fails.
count_pytest() {
	local label=$1 summary p f e s line
	summary=$(grep -E '(^|[ =])[0-9]+ (passed|failed|errors?|skipped|deselected)|no tests ran' \
		"$tmp/out" | tail -n 1 || true)
	count() { sed -n "s/.*\\b\\([0-9][0-9]*\\) $1\\b.*/\\1/p" <<<"$summary" | tail -n 1; }
	p=$(count passed)
	f=$(count failed)
	e=$(count 'errors\?')
	s=$(count skipped)
	p=${p:-0}
	s=${s:-0}
	f=$((${f:-0} + ${e:-0}))
	case $rc in
	0 | 1) if ((rc == 1 && f == 0)); then f=1; fi ;;
	5)
		note "$label: nothing collected (a failure)"
		f=$((f + 1))
		;;
	*) if ((f == 0)); then f=1; fi ;;
	esac
	while IFS= read -r line; do
		skips+=("$label: ${line#SKIPPED }")
	done < <(grep -E '^SKIPPED ' "$tmp/out" || true)
	tally "$label" "$p" "$f" "$s"
}

# 1. dependencies
stage "dependencies"
run scripts/deps.sh
if ((rc != 0)); then
	note "deps.sh failed (exit $rc); going on with what is installed"
	failed=$((failed + 1))
fi

# 2. build
stage "build (build-test, -Dwerror=true)"
built=0
if [[ -f build-test/build.ninja ]]; then
	run bash -c 'meson configure build-test -Dwerror=true && ninja -C build-test'
elif [[ -d build-test/meson-private ]]; then
	run bash -c 'meson setup --reconfigure build-test -Dwerror=true && ninja -C build-test'
else
	run bash -c 'meson setup build-test -Dwerror=true && ninja -C build-test'
fi
if ((rc == 0)); then
	built=1
else
	note "build failed (exit $rc); unit and integration tests skipped"
	failed=$((failed + 1))
fi

# 3. unit tests.  Only the suite 'unit': the integration suite is a meson
# test too, but stage 4 runs it, counting each of its tests.
if ((built)); then
	stage "unit tests (meson test --suite unit)"
	run meson test -C build-test --suite unit --print-errorlogs
	count_meson "unit tests"
fi

# 4. integration tests
if ((built)); then
	stage "integration tests (pytest tests/integration)"
	if [[ -d tests/integration ]]; then
		run env KENDALI_BIN="$root/build-test/server/kendali" \
			/usr/bin/python3 -m pytest tests/integration -q -rs -p no:cacheprovider
		count_pytest "integration tests"
	else
		note "integration tests: no tests/integration directory"
	fi
fi

# 5. the demo feed's self-check
stage "demo feed self-check (tools/demofeed.py --dry-run)"
run /usr/bin/python3 tools/demofeed.py --dry-run --backfill-days 2 --seed 1
if ((rc == 0)); then
	tally "demo feed self-check" 1 0 0
else
	note "demo feed self-check failed (exit $rc)"
	failed=$((failed + 1))
fi

# 6. browser tests
if ((built)); then
	stage "browser tests (node --test tests/browser)"
	if [[ -d tests/browser ]]; then
		run scripts/deps.sh --browser
		if ((rc != 0)); then
			note "deps.sh --browser failed (exit $rc); going on with what is installed"
			failed=$((failed + 1))
		fi
		run bash -c 'cd tests/browser && npm ci --no-audit --no-fund'
		if ((rc != 0)); then
			note "npm ci in tests/browser failed (exit $rc); browser tests skipped"
			failed=$((failed + 1))
		else
			run env KENDALI_BIN="$root/build-test/server/kendali" \
				bash -c 'cd tests/browser && exec node --test --test-reporter=tap'
			p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$tmp/out" | tail -n 1)
			if [[ -n $p ]]; then
				f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$tmp/out" | tail -n 1)
				c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$tmp/out" | tail -n 1)
				sk=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$tmp/out" | tail -n 1)
				td=$(sed -n 's/^# todo \([0-9][0-9]*\)$/\1/p' "$tmp/out" | tail -n 1)
				f=$((${f:-0} + ${c:-0}))
				if ((rc != 0 && f == 0)); then f=1; fi
				# node counts a skipped or todo test as passed too.
				sk=$((${sk:-0} + ${td:-0}))
				while IFS= read -r line; do
					skips+=("browser tests: $line")
				done < <(grep -E '^ *ok [0-9]+ - .*# (SKIP|TODO)' "$tmp/out" | sed 's/^ *ok [0-9]* - //' || true)
				tally "browser tests" "$((p - sk))" "$f" "$sk"
			else
				note "browser tests could not run (exit $rc)"
				failed=$((failed + 1))
			fi
		fi
	else
		note "browser tests: no tests/browser directory"
	fi
fi

# 7. sanitized build: gcc's AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer.  Undefined behaviour aborts instead of going on,
# and a leak or an error at exit makes the process exit 23, so that tests
# notice; every report also lands in the process's stderr, which is checked
# after the run.
stage "sanitized build (build-asan, -Db_sanitize=address,undefined)"
san_opts=("-Db_sanitize=address,undefined" -Db_lundef=false -Dbuildtype=debug
	-Dc_args=-fno-sanitize-recover=undefined)
san_env=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
san_built=0
if [[ -f build-asan/build.ninja ]]; then
	run bash -c 'meson configure build-asan "$@" && ninja -C build-asan' _ "${san_opts[@]}"
elif [[ -d build-asan/meson-private ]]; then
	run bash -c 'meson setup --reconfigure build-asan "$@" && ninja -C build-asan' _ "${san_opts[@]}"
else
	run bash -c 'meson setup build-asan "$@" && ninja -C build-asan' _ "${san_opts[@]}"
fi
if ((rc == 0)); then
	san_built=1
else
	note "sanitized build failed (exit $rc); its unit and integration tests skipped"
	failed=$((failed + 1))
fi

if ((san_built)); then
	stage "unit tests under ASan/UBSan (meson test -C build-asan --suite unit)"
	run env "${san_env[@]}" meson test -C build-asan --suite unit --print-errorlogs
	count_meson "unit tests under ASan/UBSan"

	stage "integration tests under ASan/UBSan (pytest, build-asan/server/kendali)"
	if [[ -d tests/integration ]]; then
		# The servers' and the command line's stderr go to $logs; a test
		# that starts a server by itself keeps its log under pytest's
		# temporary directory, $base.
		logs=$tmp/asan-logs
		base=$tmp/asan-pytest
		mkdir -p "$logs"
		# test_package.py tests the package's own (unsanitized) binary,
		# not build-asan's: it ran in stage 4, and would only build the
		# package again here.  The two tests that count, message by
		# message, what a stalled screen missed against a reading screen
		# ran in stage 4 too: under the sanitizers the reading screen lags
		# the server by a message now and then, and their count with it.
		run env "${san_env[@]}" KENDALI_BIN="$root/build-asan/server/kendali" \
			KENDALI_IT_LOGDIR="$logs" \
			/usr/bin/python3 -m pytest tests/integration -q -rs -p no:cacheprovider \
			--ignore=tests/integration/test_package.py \
			--deselect test_ws_timing.py::test_screen_64_behind_gets_every_message_it_missed \
			--deselect test_ws_timing.py::test_screen_65_behind_gets_a_fresh_snapshot \
			--basetemp="$base"
		count_pytest "integration tests under ASan/UBSan"
		# A report in a server's stderr fails the run even when no test
		# saw the server misbehave: one failure per report.
		pattern='ERROR: AddressSanitizer|runtime error:|LeakSanitizer'
		mapfile -t files < <(grep -r -l -E "$pattern" "$logs" "$base" 2>/dev/null || true)
		reports=0
		for f in "${files[@]}"; do
			reports=$((reports + $(grep -c -E "$pattern" "$f")))
			note "sanitizer report in ${f#"$tmp"/}:"
			grep -E -A 40 "$pattern" "$f" | head -n 200 || true
		done
		note "sanitizer reports in the servers' logs: $reports"
		failed=$((failed + reports))
	else
		note "integration tests under ASan/UBSan: no tests/integration directory"
	fi
fi

# 8. fuzzing: one test per target, passed when it ran its time without a
# crash, a leak, undefined behaviour or a broken check.
stage "fuzzing (tests/fuzz/run.sh, ${FUZZ_SECONDS:-30} s per target)"
for src in tests/fuzz/fuzz_*.c; do
	[[ -f $src ]] || continue
	target=${src#tests/fuzz/fuzz_}
	target=${target%.c}
	run tests/fuzz/run.sh -t "${FUZZ_SECONDS:-30}" "$target"
	if ((rc == 0)); then
		tally "fuzz target $target" 1 0 0
	else
		note "fuzz target $target failed (exit $rc)"
		failed=$((failed + 1))
	fi
done

echo
if ((${#skips[@]})); then
	note "skipped, each a test that did not run:"
	for s in "${skips[@]}"; do
		note "  $s"
	done
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
