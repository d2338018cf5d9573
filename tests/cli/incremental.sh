#!/bin/sh
# incremental.sh - incremental pushes: unchanged files (same path, size,
# mtime and SHA-256 as in the previous committed checkpoint) are referenced,
# not uploaded; pull and verify follow the references into older data
# objects; gc keeps every checkpoint whose data a kept one references;
# --full pushes everything; a file changed in place with the same size and
# mtime is caught by its hash; a corrupt referenced part fails verify.
. "$(dirname "$0")/../lib.sh"

GEN=${SPOTRUN_BUILD:-$SPOTRUN_TOP/build}/tools/ckpt_gen
S=

data_size() { stat -c %s "$T/st/j/ckpt/$(printf %08d "$1")/data.tar.zst"; }
refs() { python3 -c 'import json,sys
m=json.load(open(sys.argv[1])); print(" ".join(sorted("%s@%d" % (f["path"], f["ref"]["seq"]) for f in m["files"] if "ref" in f)))' \
	"$T/st/j/ckpt/$(printf %08d "$1")/manifest.json"; }

# step N FROM: a LoRA-style step: the base unchanged, a new adapter and its
# optimizer state, trainer_state.json rewritten
step() {
	cp -a "$2" "$1"
	printf '{"global_step": %s}\n' "${1#step-}" >"$1/trainer_state.json"
	head -c 400000 /dev/urandom >"$1/adapter-${1#step-}.bin"
	head -c 200000 /dev/urandom >"$1/optimizer/adapter-${1#step-}.pt"
}

t_lora_step_references_base_and_pulls_back() {
	"$GEN" step-1 20M 3 >/dev/null
	expect_rc 0 "$SR" push step-1 --job j --store file://$T/st
	step step-2 step-1
	expect_rc 0 "$SR" push step-2 --job j --store file://$T/st
	full=$(data_size 1); inc=$(data_size 2)
	[ "$inc" -lt $((full / 10)) ] || fail "incremental push wrote $inc bytes, full $full"
	case $(refs 2) in *model-00001.safetensors@1*) ;; *) fail "base not referenced: $(refs 2)" ;; esac
	case $(refs 2) in *trainer_state*) fail "changed file referenced" ;; esac
	step step-3 step-2
	expect_rc 0 "$SR" push step-3 --job j --store file://$T/st
	# references never chain: the base still points at 1, the step-2 adapter at 2
	case $(refs 3) in *model-00001.safetensors@1*adapter-2.bin@2*|*adapter-2.bin@2*model-00001.safetensors@1*) ;;
	*) fail "refs of 3: $(refs 3)" ;; esac
	expect_rc 0 "$SR" verify --job j --store file://$T/st
	expect_rc 0 "$SR" pull r3 --job j --store file://$T/st
	diff -r step-3 r3 >/dev/null || fail "pulled tree differs"
	[ "$(stat -c %Y.%a step-3/model-00001.safetensors)" = "$(stat -c %Y.%a r3/model-00001.safetensors)" ] ||
		fail "mtime or mode of a referenced file differs"
	# gc --keep 1 keeps 1 and 2 (referenced by 3)
	expect_rc 0 "$SR" gc --keep 1 --job j --store file://$T/st
	assert_contains "$ERR" "keeping checkpoint 1"
	expect_rc 0 "$SR" verify --job j --store file://$T/st
	# a full push 4, then gc --keep 1 may delete 1..3
	step step-4 step-3
	expect_rc 0 "$SR" push step-4 --full --job j --store file://$T/st
	assert_eq "$(refs 4)" ""
	expect_rc 0 "$SR" gc --keep 1 --job j --store file://$T/st
	assert_eq "$(ls "$T/st/j/ckpt")" "00000004"
	expect_rc 0 "$SR" pull r4 --job j --store file://$T/st
	diff -r step-4 r4 >/dev/null || fail "pulled tree 4 differs"
}

t_same_size_and_mtime_but_changed_is_uploaded() {
	mkdir -p a && head -c 300000 /dev/urandom >a/w.bin && printf x >a/small
	expect_rc 0 "$SR" push a --job j --store file://$T/st
	m=$(stat -c %y a/w.bin)
	printf 'Z' | dd of=a/w.bin bs=1 seek=1000 conv=notrunc 2>/dev/null
	touch -d "$m" a/w.bin
	expect_rc 0 "$SR" push a --job j --store file://$T/st
	assert_eq "$(refs 2)" "small@1"
	expect_rc 0 "$SR" pull r --job j --store file://$T/st
	cmp -s a/w.bin r/w.bin || fail "changed file not restored"
}

t_corrupt_referenced_data_fails_verify_and_pull() {
	mkdir -p a && head -c 3000000 /dev/urandom >a/w.bin
	expect_rc 0 "$SR" push a --job j --part-size 1M --store file://$T/st
	printf 'new\n' >a/note
	expect_rc 0 "$SR" push a --job j --part-size 1M --store file://$T/st
	assert_eq "$(refs 2)" "w.bin@1"
	python3 - "$T/st/j/ckpt/00000001/data.tar.zst" <<'EOP'
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[2000000]^=0x51; open(p,'wb').write(b)
EOP
	expect_rc 65 "$SR" verify --job j --store file://$T/st
	expect_rc 65 "$SR" pull r --job j --store file://$T/st
	assert_no_file r
}

run_tests
