# lib.sh - shared helpers for the shell test files (CLI and integration).
# A test file defines functions named t_* and ends with `run_tests`: each
# runs in its own subshell with `set -e`, in a fresh temp folder $T, and
# prints "PASS file/name" or "FAIL file/name: why".  Asserts print both values.
# A test that cannot run here prints the reason and exits 77: "SKIP ...",
# counted apart, never as a pass.
#
# Every metadata endpoint override points at a closed port on 127.0.0.1 so
# that no test ever sends a packet off this machine; tests that serve a
# provider's payload override the one they need.

: "${SPOTRUN_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SPOTRUN_BIN:=$SPOTRUN_TOP/spotrun}"
SR=$SPOTRUN_BIN
CLOSED=http://127.0.0.1:9
export AWS_EC2_METADATA_SERVICE_ENDPOINT=$CLOSED GCE_METADATA_HOST=127.0.0.1:9 \
	GCE_METADATA_IP=127.0.0.1:9 \
	SPOTRUN_AZURE_METADATA_ENDPOINT=$CLOSED SPOTRUN_ALIBABA_METADATA_ENDPOINT=$CLOSED \
	SPOTRUN_OCI_METADATA_ENDPOINT=$CLOSED SPOTRUN_IBM_METADATA_ENDPOINT=$CLOSED \
	AWS_EC2_METADATA_DISABLED=false
# nothing from the caller's environment may leak into a test
for v in $(env | sed -n 's/^\(SPOTRUN_[A-Z_]*\)=.*/\1/p'); do
	case $v in SPOTRUN_TOP|SPOTRUN_BIN|SPOTRUN_BUILD|SPOTRUN_*_METADATA_ENDPOINT) ;; *) unset "$v" ;; esac
done
unset SLURM_JOB_ID SLURM_JOB_NAME SLURM_RESTART_COUNT KUBERNETES_SERVICE_HOST 2>/dev/null || true
SUITE=$(basename "$(dirname "$0")")/$(basename "$0" .sh)

fail() { echo "  assertion failed: $*" >&2; exit 1; }

assert_eq() { # actual expected [what]
	[ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'"
}
assert_ne() { [ "$1" != "$2" ] || fail "${3:-value}: got '$1', expected anything else"; }
assert_contains() { # haystack needle [what]
	case "$1" in *"$2"*) ;; *) fail "${3:-text} does not contain '$2': '$1'" ;; esac
}
assert_not_contains() {
	case "$1" in *"$2"*) fail "${3:-text} contains '$2': '$1'" ;; *) ;; esac
}
assert_file() { [ -e "$1" ] || fail "missing file '$1'"; }
assert_no_file() { [ ! -e "$1" ] || fail "file '$1' should not exist"; }
assert_range() { # value lo hi what  (numbers, awk compares floats)
	awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN{exit !(v>=lo && v<=hi)}' ||
		fail "${4:-value} $1 not within [$2, $3]"
}

# run CMD...: stdout -> $T/out, stderr -> $T/err, status -> $RC; never fails
run() {
	set +e
	"$@" >"$T/out" 2>"$T/err"
	RC=$?
	set -e
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
# expect_rc CODE CMD...: run and assert the exact exit status
expect_rc() {
	_er_want=$1; shift
	run "$@"
	[ "$RC" = "$_er_want" ] || fail "exit status of '$*': got $RC, expected $_er_want; stderr: $(head -c 600 "$T/err")"
}

now_ms() { date +%s%3N; }

# wait_for COND_CMD SECONDS: polls a condition with a deadline
wait_for() {
	_wf_i=0; _wf_lim=$(( ${2:-10} * 20 ))
	while ! eval "$1" >/dev/null 2>&1; do
		_wf_i=$((_wf_i + 1)); [ $_wf_i -ge $_wf_lim ] && return 1
		sleep 0.05
	done
}

run_tests() {
	tests=$(sed -n 's/^\(t_[A-Za-z0-9_]*\)() *{.*/\1/p' "$0")
	for t in $tests; do
		if [ -n "${ONLY:-}" ]; then case $t in *"$ONLY"*) ;; *) continue ;; esac; fi
		T=$(mktemp -d "${TMPDIR:-/tmp}/sr-t.XXXXXX")
		( set -e; cd "$T"; export HOME="$T/home"; mkdir -p "$HOME"; "$t" ) >"$T.log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "PASS $SUITE/${t#t_}"
		elif [ $rc -eq 77 ]; then # a test that cannot run here says why
			echo "SKIP $SUITE/${t#t_}: $(tail -1 "$T.log")"
		else
			echo "FAIL $SUITE/${t#t_}: exit $rc"
			sed 's/^/    /' "$T.log" | tail -25
		fi
		rm -rf "$T" "$T.log"
	done
}

# ---- comparing checkpoint folders (store.sh, pull_write.sh) ----
# tree_sig DIR: one line per entry (path, type, mode, mtime ns, link target)
tree_sig() {
	(cd "$1" && find . -printf '%P|%y|%m|%T@|%l\n' | LC_ALL=C sort)
}
same_tree() { # a b
	diff -r --no-dereference "$1" "$2" >/dev/null || fail "contents of '$1' and '$2' differ: $(diff -r --no-dereference "$1" "$2" 2>&1 | head -5)"
	tree_sig "$1" >"$T/sig.a"; tree_sig "$2" >"$T/sig.b"
	cmp -s "$T/sig.a" "$T/sig.b" || fail "metadata differs: $(diff "$T/sig.a" "$T/sig.b" | head -6)"
}
# sparse_cmp A B: byte-for-byte comparison that reads only the data
# regions of either file (holes read as zeros in both), so comparing two
# sparse 4 GiB files costs milliseconds instead of 10 s of reading zeros
sparse_cmp() {
	python3 - "$1" "$2" <<'EOF' || fail "'$1' and '$2' differ"
import os, sys
def segments(path):
    fd, out, off = os.open(path, os.O_RDONLY), [], 0
    size = os.fstat(fd).st_size
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end)); off = end
    os.close(fd)
    return size, out
(sa, a), (sb, b) = segments(sys.argv[1]), segments(sys.argv[2])
assert sa == sb, "sizes differ"
fa, fb = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
for start, end in sorted(a + b):
    fa.seek(start); fb.seek(start)
    while start < end:
        n = min(end - start, 1 << 20)
        assert fa.read(n) == fb.read(n), "bytes differ near %d" % start
        start += n
EOF
}
# assert_sparse_copy SRC DST FILE: DST/FILE is SRC/FILE, same size and bytes,
# extracted sparse (far fewer blocks than bytes), and both trees carry the
# same names, types, modes and mtimes
assert_sparse_copy() {
	assert_eq "$(stat -c %s "$2/$3")" "$(stat -c %s "$1/$3")" "size"
	assert_range "$(stat -c %b "$2/$3")" 0 100000 "512-byte blocks allocated"
	sparse_cmp "$1/$3" "$2/$3"
	tree_sig "$1" >"$T/sig.a"; tree_sig "$2" >"$T/sig.b"
	cmp -s "$T/sig.a" "$T/sig.b" || fail "metadata differs: $(diff "$T/sig.a" "$T/sig.b")"
}
