#!/bin/sh
# store_direct.sh - the file:// store's O_DIRECT write path, end to end: a
# push whose data object is not a multiple of 4096 bytes (so its last page
# is written buffered) with small parts and three workers (parts finish out
# of order; the push appends them in order) verifies and pulls back byte for
# byte, written direct, buffered (SPOTRUN_FILE_DIRECT=0) and on tmpfs, where
# the store falls back to buffered writes.
. "$(dirname "$0")/../lib.sh"

mk_ckpt() {
	mkdir -p "$1/optimizer"
	head -c 9000001 /dev/urandom >"$1/model.safetensors"
	python3 -c 'import sys; sys.stdout.write("step 12, loss 0.25\n" * 300001)' >"$1/optimizer/log.txt"
	printf '{"global_step": 12}\n' >"$1/trainer_state.json"
}

# push_pull STORE: push, check the data object, verify, pull, compare
push_pull() {
	expect_rc 0 "$SR" push ck --job j --store "$1" --part-size 256K --workers 3 -vv
	PUSH_ERR=$ERR
	data=$1/j/ckpt/00000001/data.tar.zst
	size=$(stat -c %s "$data")
	[ $((size % 4096)) -ne 0 ] || fail "data object is $size bytes, a multiple of 4096"
	assert_range "$size" 8000000 20000000 "data object bytes"
	expect_rc 0 "$SR" verify --job j --store "$1"
	expect_rc 0 "$SR" pull back --job j --store "$1"
	diff -r ck back >/dev/null || fail "pulled tree differs"
	assert_eq "$(find "$1" -name '.tmp-*' | wc -l)" 0 "temporary files"
}

disk_fs() { # the folder is on a file system with O_DIRECT on disk
	case $(stat -f -c %T "$1") in ext2/ext3|xfs|btrfs) return 0 ;; *) return 1 ;; esac
}

t_direct_odd_size() {
	mk_ckpt ck
	push_pull "$T/st"
	if disk_fs "$T"; then
		assert_contains "$PUSH_ERR" "bytes, O_DIRECT)" "debug log"
	fi
}

t_buffered_knob() {
	mk_ckpt ck
	export SPOTRUN_FILE_DIRECT=0
	push_pull "$T/st"
	assert_not_contains "$PUSH_ERR" "O_DIRECT" "debug log"
}

t_tmpfs_falls_back() {
	[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || { echo "no tmpfs at /dev/shm"; exit 77; }
	mk_ckpt ck
	S=$(mktemp -d /dev/shm/sr-direct.XXXXXX)
	trap 'rm -rf "$S"' EXIT
	push_pull "$S"
	assert_contains "$PUSH_ERR" "in memory (tmpfs, ramfs), writing buffered" "debug log"
	assert_not_contains "$PUSH_ERR" "O_DIRECT)" "debug log"
}

run_tests
