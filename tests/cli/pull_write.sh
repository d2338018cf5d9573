#!/bin/sh
# pull_write.sh - the write side of pull (checkpoint/ckpt_write.c): files of
# every size around the O_DIRECT alignment (4096) and threshold (256 KiB),
# larger than one aligned buffer (4 MiB), with blocks of zeros inside and at
# the end, read-only and executable modes, nanosecond mtimes, pulled with
# O_DIRECT (SPOTRUN_PULL_DIRECT unset) and through the page cache
# (SPOTRUN_PULL_DIRECT=0), into /dev/shm, with O_DIRECT refused by the file
# system (an LD_PRELOAD stand-in), and a sparse 4 GiB file; each compared
# byte for byte with its mode and mtime.
. "$(dirname "$0")/../lib.sh"

# mk_sizes DIR: files of the sizes that matter to ckpt_write.c
mk_sizes() {
	python3 - "$1" <<'EOF' || fail "cannot make the tree"
import os, random, sys
d = sys.argv[1]
os.makedirs(d + "/sub/deeper")
rnd = random.Random(42)
K, M = 1024, 1024 * 1024
def put(name, data, mode=0o644, mtime=(1600000000, 123456789)):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
    os.utime(p, ns=(mtime[0] * 10**9 + mtime[1],) * 2)
r = lambda n: rnd.randbytes(n)
z = lambda n: bytes(n)
for n in (0, 1, 4095, 4096, 4097, 256 * K - 1, 256 * K, 256 * K + 1, 8 * M + 3):
    put("s%d" % n, r(n), mtime=(1600000000 + n, n % 1000000000))
put("sub/ro-8m3", r(8 * M + 3), 0o444, (1500000000, 1))
put("sub/exec-300k", r(300 * K + 17), 0o755, (1700000000, 999999999))
put("sub/deeper/zeros-in-middle", r(M + 5) + z(3 * M) + r(2 * M + 100), 0o600)
put("sub/deeper/zeros-at-end", r(5 * M + 7) + z(M + 4096 * 3 + 11))
put("sub/deeper/all-zeros-5m", z(5 * M + 1))
put("sub/deeper/zero-1", z(1))
put("sub/deeper/tail-zero-block", r(300 * K) + z(4096))
put("small-zeros-in-middle", r(5000) + z(8192) + r(3))
os.utime(d + "/sub/deeper", ns=(1234567890123456789,) * 2)
EOF
}

t_sizes_direct_and_buffered() {
	mk_sizes ck
	# 256 KiB parts: file data arrives in blocks cut at unaligned offsets
	expect_rc 0 "$SR" push ck --job j --part-size 256K
	expect_rc 0 "$SR" pull direct --job j
	same_tree ck direct
	expect_rc 0 env SPOTRUN_PULL_DIRECT=0 "$SR" pull buffered --job j
	same_tree ck buffered
	expect_rc 0 "$SR" push ck --job j8 --part-size 8M
	expect_rc 0 "$SR" pull direct8 --job j8
	same_tree ck direct8
	# blocks of zeros are not written (the old ARCHIVE_EXTRACT_SPARSE promise)
	assert_range "$(stat -c %b direct/sub/deeper/all-zeros-5m)" 0 8 "512-byte blocks of all-zeros-5m"
	assert_range "$(stat -c %b buffered/sub/deeper/all-zeros-5m)" 0 8 "512-byte blocks, page cache"
}

t_direct_knob_seen_by_the_kernel() {
	command -v strace >/dev/null || { echo "no strace"; exit 77; }
	mk_sizes ck
	expect_rc 0 "$SR" push ck --job j
	# LeakSanitizer (a SAN=1 binary) cannot run under a tracer
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	strace -f -qq -e trace=fcntl -o "$T/st.direct" "$SR" pull a --job j 2>/dev/null >/dev/null ||
		{ echo "strace cannot trace here"; exit 77; }
	grep -Eq 'F_SETFL, .*O_DIRECT([^O]|$)' "$T/st.direct" || fail "no O_DIRECT with the default"
	SPOTRUN_PULL_DIRECT=0 strace -f -qq -e trace=fcntl -o "$T/st.buf" "$SR" pull b --job j >/dev/null 2>&1
	assert_eq "$(grep -Ec 'O_DIRECT([^O]|$)' "$T/st.buf")" 0 "O_DIRECT uses with SPOTRUN_PULL_DIRECT=0"
	same_tree ck a
	same_tree ck b
}

t_into_dev_shm() {
	[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "no writable /dev/shm"; exit 77; }
	mk_sizes ck
	expect_rc 0 "$SR" push ck --job j --part-size 1M
	D=$(mktemp -d /dev/shm/sr-pull.XXXXXX)
	trap 'rm -rf "$D"' EXIT
	expect_rc 0 "$SR" pull "$D/back" --job j
	same_tree ck "$D/back"
	expect_rc 0 env SPOTRUN_PULL_DIRECT=0 "$SR" pull "$D/back0" --job j
	same_tree ck "$D/back0"
	assert_eq "$(ls -A "$D" | wc -l)" 2 "no leftovers in /dev/shm"
}

# An LD_PRELOAD stand-in for a file system without O_DIRECT: SHIM=fcntl
# refuses to set it, SHIM=write accepts it and then fails every write on
# such a descriptor with EINVAL (as some file systems do).
mk_shim() {
	ldd "$SR" 2>/dev/null | grep -q libasan && { echo "sanitizer build: no LD_PRELOAD"; exit 77; }
	command -v cc >/dev/null || { echo "no C compiler"; exit 77; }
	cat >shim.c <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int mode(const char *m) { const char *s = getenv("SHIM"); return s && !strcmp(s, m); }
int fcntl(int fd, int cmd, ...)
{
	static int (*real)(int, int, ...);
	va_list ap;
	long arg;
	if (!real)
		real = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if (cmd == F_SETFL && (arg & O_DIRECT) && mode("fcntl")) {
		errno = EINVAL;
		return -1;
	}
	return real(fd, cmd, arg);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	if (mode("write") && (fcntl(fd, F_GETFL) & O_DIRECT)) {
		errno = EINVAL;
		return -1;
	}
	return real(fd, b, n, off);
}
EOF
	cc -shared -fPIC -o shim.so shim.c -ldl || fail "cannot build the shim"
}

t_direct_refused_falls_back() {
	mk_shim
	mk_sizes ck
	expect_rc 0 "$SR" push ck --job j --part-size 1M
	expect_rc 0 env SHIM=fcntl LD_PRELOAD="$T/shim.so" "$SR" pull a --job j
	same_tree ck a
	expect_rc 0 env SHIM=write LD_PRELOAD="$T/shim.so" "$SR" pull b --job j
	same_tree ck b
}

t_write_error_fails_cleanly() {
	mk_sizes ck
	expect_rc 0 "$SR" push ck --job j
	# a file size limit below the 8 MiB files: the write fails (EFBIG) on
	# the writer thread; the pull must fail naming a file, leaving nothing
	set +e
	(ulimit -f 4096; trap '' XFSZ; exec "$SR" pull back --job j) >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	assert_eq "$rc" 74 "exit status"
	assert_contains "$(cat "$T/err")" "cannot"
	assert_no_file back
	assert_eq "$(ls -A | grep -c spotrun-tmp)" 0 "temporary folders left"
}

t_sparse_4gib() {
	mkdir big
	python3 - <<'EOF' || fail "cannot make the sparse file"
import os
with open("big/huge.bin", "wb") as f:
    f.truncate(4100 * 1024 * 1024)
    for off, data in ((0, b"head"), (1000000000, b"x"), (2**31 + 4093, b"across"),
                      (2**32 + 1, os.urandom(5 * 1024 * 1024 + 3)), (4100 * 1024 * 1024 - 3, b"end")):
        f.seek(off); f.write(data)
os.utime("big/huge.bin", ns=(1700000000000000001,) * 2)
EOF
	expect_rc 0 "$SR" push big --job big --workers 2
	expect_rc 0 "$SR" pull back --job big
	assert_sparse_copy big back huge.bin
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		D=$(mktemp -d /dev/shm/sr-pull.XXXXXX)
		trap 'rm -rf "$D"' EXIT
		expect_rc 0 "$SR" pull "$D/back" --job big
		assert_range "$(stat -c %b "$D/back/huge.bin")" 0 100000 "blocks allocated in /dev/shm"
		sparse_cmp big/huge.bin "$D/back/huge.bin"
	fi
}

t_incremental_refs_written_too() {
	mk_sizes ck
	expect_rc 0 "$SR" push ck --job j --part-size 1M
	cp -a ck ck2
	printf 'new\n' >ck2/added
	expect_rc 0 "$SR" push ck2 --job j --part-size 1M
	refs=$(python3 -c 'import json,sys; print(sum(1 for f in json.load(open(sys.argv[1]))["files"] if f.get("ref")))' \
		spotrun-store/j/ckpt/00000002/manifest.json)
	assert_range "$refs" 10 1000 "files referenced from checkpoint 1"
	expect_rc 0 "$SR" pull back --job j
	same_tree ck2 back
	expect_rc 0 env SPOTRUN_PULL_DIRECT=0 "$SR" pull back0 --job j
	same_tree ck2 back0
}

run_tests
