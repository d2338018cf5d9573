#!/bin/sh
# store_crash.sh - kill -9 of `spotrun push` at 20 random moments of a
# ~140 MB push with 1 MiB parts (so most kills land mid-flight): afterwards
# ls shows only committed checkpoints, each intact; the next push and pull
# succeed byte for byte; gc removes every leftover (claims, data without a
# manifest, orphaned temporary files).  --full: an incremental push of the
# unchanged folder would reference everything and be over too soon to kill.
. "$(dirname "$0")/../lib.sh"

# random_delay MAX_MS: prints a sleep argument between 0 and MAX_MS ms
random_delay() {
	printf '%d.%03d' 0 $(( $(od -An -N2 -tu2 /dev/urandom) % $1 ))
}

t_kill9_during_push() {
	mkdir -p ck/sub
	for i in 1 2 3 4 5 6; do head -c 20000000 /dev/urandom >ck/sub/r$i.bin; done
	python3 -c 'import sys; sys.stdout.write("abc def\n" * 3000000)' >ck/text
	# how long one push takes, so the kills spread over all of it
	start=$(now_ms)
	expect_rc 0 "$SR" push ck --job k --part-size 1M --full
	span=$(( $(now_ms) - start ))
	[ "$span" -gt 50 ] || span=50
	[ "$span" -lt 999 ] || span=999
	kills=0
	for i in $(seq 20); do
		"$SR" push ck --job k --part-size 1M --full 2>/dev/null &
		pid=$!
		sleep "$(random_delay "$span")"
		kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
		wait "$pid" 2>/dev/null || true
	done
	echo "killed $kills of 20 pushes mid-flight (span ${span} ms)"
	assert_range "$kills" 10 20 "pushes killed before finishing"
	S=spotrun-store/k/ckpt
	committed=$(ls $S/*/manifest.json | wc -l)
	expect_rc 0 "$SR" ls --job k --json
	listed=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
	assert_eq "$listed" "$committed" "listed = committed"
	leftovers=$(for d in $S/*/; do [ -e "$d/manifest.json" ] || echo "$d"; done | wc -l)
	echo "committed $committed, uncommitted leftovers $leftovers"
	expect_rc 0 "$SR" verify --job k
	# the next push gets a fresh seq and commits; pull restores it exactly
	expect_rc 0 "$SR" push ck --job k --part-size 1M --full
	expect_rc 0 "$SR" ls --job k --json
	newest=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print("%08d" % json.load(sys.stdin)[-1]["seq"])')
	assert_eq "$newest" "$(ls $S | tail -1)" "newest seq is the highest"
	expect_rc 0 "$SR" pull back --job k
	diff -r ck back >/dev/null || fail "restored tree differs"
	# gc: only the newest checkpoint remains, no leftovers at all
	expect_rc 0 "$SR" gc --keep 1 --job k
	assert_eq "$(ls $S)" "$newest" "seq folders after gc"
	assert_eq "$(find spotrun-store -name '.tmp-*' ! -path "*/$newest/*" | wc -l)" 0 "temporary files"
	assert_eq "$(find spotrun-store -name '.tmp-*data*' | wc -l)" 0 "temporary data files"
	expect_rc 0 "$SR" verify --job k
}

run_tests
