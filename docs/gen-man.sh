#!/bin/sh
# gen-man.sh - builds docs/spotrun.1 from docs/spotrun.1.in and the --help
# texts of the binary, so the man page's SUBCOMMANDS and OPTIONS sections can
# never drift from runner/options.c (tests/cli/docs.sh regenerates and diffs).
#   sh docs/gen-man.sh [SPOTRUN_BIN [OUTPUT]]   (default ./spotrun, docs/spotrun.1; - = stdout)
# The template's lines @VERSION@ (inline), @SUBCOMMANDS@ and @OPTIONS@ (alone
# on a line) are replaced; everything else is copied as is.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${SPOTRUN_BIN:-$top/spotrun}}
out=${2:-$top/docs/spotrun.1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gen-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$bin" --help >"$tmp/top" 2>&1
# subcommand names, in the order of the top-level help
subs=$(awk '/^subcommands:/{f=1;next} f&&/^  [a-z]/{print $1} f&&/^$/{exit}' "$tmp/top")
[ -n "$subs" ] || { echo "gen-man.sh: no subcommands in '$bin --help'" >&2; exit 1; }
version=$("$bin" --version | awk '{print $2}')
for s in $subs; do "$bin" "$s" --help >"$tmp/h.$s" 2>&1; done

# roff-safe text: backslashes, then a leading . or ' protected
esc='function esc(s) { gsub(/\\/, "\\e", s); sub(/^[.\047]/, "\\\\\\&&", s); return s }'

# SUBCOMMANDS: usage line, description (may span lines), option list
for s in $subs; do
	awk -v sub_="$s" "$esc"'
	NR==1 { sub(/^usage: /, ""); usage=$0; next }
	/^options:/ { inopt=1; next }
	!inopt && NF { desc = desc (desc ? " " : "") $0; next }
	inopt && /^  / {
		line=$0; sub(/^ +(-[A-Za-z], )?/, "", line); split(line, w, " ")
		if (w[1] != "--help" && w[1] != "--version") opts = opts (opts ? ", " : "") "\\%" w[1]
	}
	END {
		usage=esc(usage); gsub(/-/, "\\-", usage); gsub(/-/, "\\-", opts)
		print ".TP"; print ".B " sub_
		print "\\fBusage:\\fR " usage; print ".br"
		print esc(desc); print ".br"
		print "Options: " opts "."
	}' "$tmp/h.$s"
done >"$tmp/subcommands"

# OPTIONS: the union of every subcommand's options, in first-seen order, each
# with its argument, description, SPOTRUN_* twin and the subcommands taking it
for s in $subs; do
	awk -v sub_="$s" '/^options:/{f=1;next} f&&/^  /{print sub_ "\t" $0} f&&/^$/{exit}' "$tmp/h.$s"
done | awk -F'\t' "$esc"'
{
	line=$2; short=""
	if (match(line, /^ +-[A-Za-z], /)) { short=substr(line, RSTART, RLENGTH); gsub(/[ ,]/, "", short) }
	sub(/^ +(-[A-Za-z], )? */, "", line)
	long=line; sub(/ .*/, "", long)
	rest=substr(line, length(long) + 1)
	arg=""
	# the argument is what follows the option name after ONE space, up to the
	# column gap (two or more spaces) before the description
	if (match(rest, /^ [^ ]+/)) { arg=substr(rest, 2, RLENGTH - 1); rest=substr(rest, RLENGTH + 1) }
	sub(/^ +/, "", rest)
	env=""
	if (match(rest, / \[SPOTRUN_[A-Z0-9_]+\]$/)) { env=substr(rest, RSTART + 2, RLENGTH - 3); rest=substr(rest, 1, RSTART - 1) }
	if (!(long in seen)) { seen[long]=1; order[++n]=long; S[long]=short; A[long]=arg; D[long]=rest; E[long]=env; U[long]=$1 }
	else U[long]=U[long] ", " $1
}
END {
	for (i = 1; i <= n; i++) {
		l=order[i]; lq=l; gsub(/-/, "\\-", lq)
		print ".TP"
		head = (S[l] != "" ? "\\fB\\" S[l] "\\fR, " : "") "\\fB" lq "\\fR"
		if (A[l] != "") head = head " \\fI" A[l] "\\fR"
		print head
		print esc(D[l])
		if (E[l] != "") { print ".br"; print "Environment: \\fB" E[l] "\\fR." }
		print ".br"; print "Subcommands: " U[l] "."
	}
}' >"$tmp/options"

awk -v ver="$version" -v subs="$tmp/subcommands" -v opts="$tmp/options" '
/^@SUBCOMMANDS@$/ { while ((getline l < subs) > 0) print l; next }
/^@OPTIONS@$/ { while ((getline l < opts) > 0) print l; next }
{ gsub(/@VERSION@/, ver); print }' "$top/docs/spotrun.1.in" >"$tmp/out"

if [ "$out" = - ]; then cat "$tmp/out"; else cp "$tmp/out" "$out"; fi
