#!/bin/sh
# docs.sh - the man page renders cleanly and matches the binary's --help
# texts (docs/gen-man.sh regenerates it; a stale page fails here), and the
# bash completion completes subcommands, options and option values.
. "$(dirname "$0")/../lib.sh"
MAN=$SPOTRUN_TOP/docs/spotrun.1
COMP=$SPOTRUN_TOP/contrib/bash-completion/spotrun

t_man_renders_without_warnings() {
	if command -v man >/dev/null 2>&1; then
		warn=$(MANWIDTH=80 man --warnings -l "$MAN" 2>&1 >/dev/null)
	elif command -v groff >/dev/null 2>&1; then
		warn=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)
	else
		fail "neither man nor groff is installed (sh tests/deps.sh installs groff-base)"
	fi
	assert_eq "$warn" "" "man page warnings"
}

t_man_is_current() {
	sh "$SPOTRUN_TOP/docs/gen-man.sh" "$SR" "$T/spotrun.1" || fail "gen-man.sh failed"
	diff -u "$MAN" "$T/spotrun.1" >"$T/diff" ||
		fail "docs/spotrun.1 is stale: run sh docs/gen-man.sh and commit it: $(head -c 1500 "$T/diff")"
}

t_man_lists_every_option() {
	missing=""
	for s in $("$SR" --help | awk '/^subcommands:/{f=1;next} f&&/^  [a-z]/{print $1} f&&/^$/{exit}'); do
		grep -qx ".B $s" "$MAN" || missing="$missing $s"
		# every --option (bold, hyphens as \-) and its [SPOTRUN_*] twin
		missing="$missing$("$SR" "$s" --help | awk -v s="$s" -v man="$MAN" '
			BEGIN { while ((getline l < man) > 0) page = page l "\n" }
			/^options:/ { f = 1; next }
			f && /^  / {
				line = $0; sub(/^ +(-[A-Za-z], )? */, "", line); split(line, w, " ")
				o = w[1]; gsub(/-/, "\\-", o)
				if (!index(page, "\\fB" o "\\fR")) printf " %s:%s", s, w[1]
				if (match(line, /\[SPOTRUN_[A-Z0-9_]+\]$/)) {
					e = substr(line, RSTART + 1, RLENGTH - 2)
					if (!index(page, "\\fB" e "\\fR")) printf " %s:%s", s, e
				}
			}')"
	done
	assert_eq "$missing" "" "options missing from docs/spotrun.1"
}

# complete WORD...: COMPREPLY for the last word, one line, sorted
complete_words() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
		COMPREPLY=(); _spotrun; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		- "$COMP" "$@"
}

t_completion_subcommands() {
	command -v bash >/dev/null || fail "bash not installed"
	assert_eq "$(complete_words "$SR" pu)" "pull push " "spotrun pu<TAB>"
}

t_completion_options() {
	assert_eq "$(complete_words "$SR" run --sig)" "--signal-grace " "spotrun run --sig<TAB>"
	assert_eq "$(complete_words "$SR" gc --k)" "--keep " "spotrun gc --k<TAB>"
	r=$(complete_words "$SR" --hoo)
	assert_contains "$r" "--hooks-dir" "spotrun --hoo<TAB>"
}

t_completion_values() {
	r=$(complete_words "$SR" --provider "")
	assert_contains "$r" "aws" "spotrun --provider <TAB>"
	assert_contains "$r" "none" "spotrun --provider <TAB>"
	assert_contains "$(complete_words "$SR" run --notice-signal "")" "USR1" "--notice-signal <TAB>"
	assert_contains "$(complete_words "$SR" --migrate "")" "deny" "--migrate <TAB>"
	assert_contains "$(complete_words "$SR" -s "")" "s3://" "-s <TAB>"
	assert_contains "$(complete_words "$SR" run --from-store "")" "gs://" "--from-store <TAB>"
	assert_contains "$(complete_words "$SR" --hook "")" "hardware-change=" "--hook <TAB>"
	mkdir -p ckpts/step-1 && : >cfg.json
	assert_eq "$(complete_words "$SR" run --ckpt-dir ck)" "ckpts " "--ckpt-dir <TAB> (a folder)"
	assert_eq "$(complete_words "$SR" --config cf)" "cfg.json " "--config <TAB> (a file)"
}

run_tests
