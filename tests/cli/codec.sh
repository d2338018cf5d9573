#!/bin/sh
# codec.sh - the float-aware part codec (bp1, docs/codec.md) end to end: a
# synthetic safetensors checkpoint (bf16 weights, fp32 moments) pushes as
# bp1 parts, smaller than --portable's plain zstd, and pulls byte for byte;
# --portable keeps `zstd -dc | tar -x` working; a flipped byte in a bp1
# part is caught by verify (exit 65, naming the part) and refused by pull;
# fp16 / int8 / odd-sized tensors and non-safetensors float dumps survive.
. "$(dirname "$0")/../lib.sh"

GEN=${SPOTRUN_BUILD:-$SPOTRUN_TOP/build}/tools/ckpt_gen

# mk_st FILE: a safetensors file with F16, I8, odd-length BF16 and F32 tensors
mk_st() {
	python3 - "$1" <<'EOF2'
import json, random, struct, sys
random.seed(7)
def f16(n): return b"".join(struct.pack("<e", random.gauss(0, 0.02)) for _ in range(n))
def f32(n): return b"".join(struct.pack("<f", random.gauss(0, 1e-3)) for _ in range(n))
def bf16(n): return b"".join(struct.pack("<f", random.gauss(0, 0.02))[2:] for _ in range(n))
blobs = [("h", "F16", f16(30001)), ("q", "I8", bytes(random.randrange(256) for _ in range(7777))),
         ("w", "BF16", bf16(50001)), ("m", "F32", f32(40000))]
hdr, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
for name, dt, b in blobs:
    hdr[name] = {"dtype": dt, "shape": [len(b)], "data_offsets": [off, off + len(b)]}
    off += len(b); data += b
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
EOF2
}

codecs() { # manifest -> "zstd=N bp1=M"
	python3 -c 'import json,sys,collections
m=json.load(open(sys.argv[1])); c=collections.Counter(p.get("codec","zstd") for p in m["parts"])
print("format=%d zstd=%d bp1=%d" % (m["format"], c["zstd"], c["bp1"]))' "$1"
}

t_bp1_round_trip_smaller_than_zstd() {
	"$GEN" ck 40M 5 >/dev/null
	expect_rc 0 "$SR" push ck --job j --part-size 1M --store file://$T/st
	expect_rc 0 "$SR" push ck --job p --part-size 1M --portable --store file://$T/st
	case $(codecs "$T/st/j/ckpt/00000001/manifest.json") in
	format=2\ *bp1=0) fail "no bp1 parts" ;; format=2*) ;; *) fail "not format 2" ;; esac
	assert_eq "$(codecs "$T/st/p/ckpt/00000001/manifest.json")" "format=1 zstd=$(python3 -c 'import json,sys;print(len(json.load(open(sys.argv[1]))["parts"]))' "$T/st/p/ckpt/00000001/manifest.json") bp1=0"
	a=$(stat -c %s "$T/st/j/ckpt/00000001/data.tar.zst"); b=$(stat -c %s "$T/st/p/ckpt/00000001/data.tar.zst")
	[ "$a" -lt $((b * 95 / 100)) ] || fail "bp1 $a bytes is not 5% smaller than zstd $b"
	expect_rc 0 "$SR" verify --job j --store file://$T/st
	expect_rc 0 "$SR" pull restored --job j --store file://$T/st
	diff -r ck restored >/dev/null || fail "pulled tree differs"
	mkdir plain && zstd -q -dc "$T/st/p/ckpt/00000001/data.tar.zst" | (cd plain && tar -xf -)
	diff -r ck plain/ck >/dev/null || fail "zstd -dc | tar -x of --portable differs"
}

t_dtypes_and_odd_tensors() {
	mkdir -p ck/sub
	mk_st ck/model.safetensors
	mk_st ck/sub/b.safetensors
	printf 'tail' >>ck/sub/b.safetensors	# trailing bytes after the tensors
	python3 -c 'import struct,random,sys
random.seed(1); sys.stdout.buffer.write(b"".join(struct.pack("<f", random.gauss(0,1)) for _ in range(600000)))' >ck/raw.f32
	head -c 1500000 /dev/zero >ck/zeros.bin
	head -c 300000 /dev/urandom >ck/random.safetensors	# not really one
	for ps in 64K 1M; do
		expect_rc 0 "$SR" push ck --job "j$ps" --part-size $ps --store file://$T/st
		expect_rc 0 "$SR" pull "o$ps" --job "j$ps" --store file://$T/st
		diff -r ck "o$ps" >/dev/null || fail "pulled tree differs at part size $ps"
	done
	case $(codecs "$T/st/j64K/ckpt/00000001/manifest.json") in *bp1=0) fail "no bp1 parts" ;; esac
}

t_corrupt_bp1_part_detected() {
	"$GEN" ck 12M 9 >/dev/null
	expect_rc 0 "$SR" push ck --job j --part-size 1M --store file://$T/st
	m=$T/st/j/ckpt/00000001/manifest.json
	# flip a byte in the middle of the first bp1 part
	set -- $(python3 -c 'import json,sys
m=json.load(open(sys.argv[1])); i,p=[(i,p) for i,p in enumerate(m["parts"]) if p["codec"]=="bp1"][0]
print(i, p["offset"] + p["size"] // 2)' "$m")
	python3 -c 'import sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0x40]))' \
		"$T/st/j/ckpt/00000001/data.tar.zst" "$2"
	expect_rc 65 "$SR" verify --job j --store file://$T/st
	assert_contains "$ERR" "part $1 "
	expect_rc 65 "$SR" pull restored --job j --store file://$T/st
	assert_no_file restored
}

run_tests
