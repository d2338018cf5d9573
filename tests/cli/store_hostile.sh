#!/bin/sh
# store_hostile.sh - damaged and hostile checkpoints.  A flipped byte in the
# data, a truncated manifest and manifests with wrong hashes must be refused
# with exit 65 naming the part or file, leaving nothing behind.  Hostile
# archives are built by hand (python3 tarfile + zstd) together with a
# manifest whose hashes are all correct, so that only the path checks of
# pull can catch them: each must exit 65 with nothing written outside the
# destination, no destination and no temporary folder left.
. "$(dirname "$0")/../lib.sh"

# plant_ckpt CASE: writes store/j/ckpt/00000001/{data.tar.zst,manifest.json}
plant_ckpt() {
	mkdir -p "$T/outside" "$T/work" "$T/store/j/ckpt/00000001"
	python3 - "$1" "$T" <<'EOF' || fail "cannot build case $1"
import hashlib, io, json, os, subprocess, sys, tarfile
case, T = sys.argv[1], sys.argv[2]
entries = []   # (TarInfo, bytes or None, manifest path or None)
def add(name, kind="file", data=b"", target=None, mpath="auto", mtarget=None):
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.mode = 1700000000, 0o644
    if kind == "dir":
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, target
    elif kind == "hardlink":
        ti.type, ti.linkname = tarfile.LNKTYPE, target
    else:
        ti.size = len(data)
    if mpath == "auto":
        mpath = name[3:] if name.startswith("ck/") else name.lstrip("/").replace("../", "")
    entries.append((ti, data if kind == "file" else None, mpath,
                    "file" if kind in ("file", "hardlink") else kind, mtarget or target))
add("ck/", "dir", mpath=None)
add("ck/ok", data=b"fine\n")
if case == "valid":
    add("ck/sub", "dir"); add("ck/sub/x", data=b"x" * 1000); add("ck/l", "symlink", target="sub/x")
elif case == "dotdot":
    add("ck/../escape", data=b"pwned\n")
elif case == "dotdot_top":
    add("../escape", data=b"pwned\n")
elif case == "absolute":
    add(T + "/outside/abs", data=b"pwned\n")
elif case == "symlink_out":
    add("ck/link", "symlink", target="../../outside"); add("ck/link/x", data=b"pwned\n")
elif case == "symlink_abs":
    add("ck/link", "symlink", target=T + "/outside"); add("ck/link/x", data=b"pwned\n")
elif case == "through_inner_link":
    add("ck/sub", "dir"); add("ck/l", "symlink", target="sub"); add("ck/l/x", data=b"pwned\n")
elif case == "link_chain":
    add("ck/a", "dir"); add("ck/a/up", "symlink", target=".."); add("ck/esc", "symlink", target="a/up/..")
elif case == "not_in_manifest":
    add("ck/extra", data=b"surprise\n", mpath=None)
elif case == "hardlink":
    add("ck/h", "hardlink", target="ck/ok")
elif case == "duplicate":
    add("ck/ok", data=b"fine\n", mpath=None)
elif case == "missing_entry":
    entries.append((None, None, "ghost", "file", None))
elif case == "type_mismatch":
    add("ck/d", data=b"i am a file\n")
    entries[-1] = entries[-1][:3] + ("dir", None)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
    for ti, data, *_ in entries:
        if ti is not None:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
raw = buf.getvalue()
d = T + "/store/j/ckpt/00000001/"
open(T + "/raw.tar", "wb").write(raw)
subprocess.run(["zstd", "-q", "-f", T + "/raw.tar", "-o", d + "data.tar.zst"], check=True)
comp = open(d + "data.tar.zst", "rb").read()
files = []
for ti, data, mpath, mtype, mtarget in entries:
    if mpath is None:
        continue
    f = {"path": mpath, "type": mtype, "size": len(data) if mtype == "file" and data is not None else 0,
         "mode": 0o644, "mtime": 1700000000, "mtime_nsec": 0}
    if mtype == "file":
        f["sha256"] = hashlib.sha256(data or b"").hexdigest()
    if mtype == "symlink":
        f["target"] = mtarget
    files.append(f)
m = {"format": 1, "job": "j", "seq": 1, "step": None, "name": "ck", "created": "2026-01-01T00:00:00Z",
     "host": "h", "provider": "", "region": "", "instance": "", "gpu": None, "files": files,
     "parts": [{"raw_offset": 0, "raw_size": len(raw), "offset": 0, "size": len(comp),
                "sha256": hashlib.sha256(comp).hexdigest()}],
     "totals": {"files": len(files), "raw_bytes": len(raw), "stored_bytes": len(comp)},
     "compression": {"codec": "zstd", "level": 3, "part_size": max(65536, len(raw))}}
json.dump(m, open(d + "manifest.json", "w"))
EOF
}

# refused CASE WHY: pull and verify exit 65, nothing written anywhere
refused() {
	plant_ckpt "$1"
	cd "$T/work"
	expect_rc 65 "$SR" pull dest --job j --store "$T/store"
	assert_contains "$ERR" "$2"
	assert_eq "$(ls -A "$T/work")" "" "work folder after a refused pull"
	assert_eq "$(ls -A "$T/outside")" "" "outside folder"
	assert_no_file "$T/escape"
	expect_rc 65 "$SR" verify --job j --store "$T/store"
}

t_control_valid_crafted_archive() {
	plant_ckpt valid
	cd "$T/work"
	expect_rc 0 "$SR" pull dest --job j --store "$T/store"
	assert_eq "$(cat dest/l)" "$(printf 'x%.0s' $(seq 1000))"
	assert_eq "$(readlink dest/l)" "sub/x"
}
t_dotdot_component() { refused dotdot "unsafe path"; }
t_dotdot_above_folder() { refused dotdot_top "outside the checkpoint folder"; }
t_absolute_path() { refused absolute "outside the checkpoint folder"; }
t_symlink_out_then_file() { refused symlink_out "leaves the folder"; }
t_absolute_symlink_then_file() { refused symlink_abs "leaves the folder"; }
t_file_through_inner_symlink() { refused through_inner_link "parent is not a folder"; }
t_symlink_chain_escape() { refused link_chain "leaves the folder"; }
t_entry_not_in_manifest() { refused not_in_manifest "not in the manifest"; }
t_hardlink_entry() { refused hardlink "type differs"; }
t_duplicate_entry() { refused duplicate "appears twice"; }
t_manifest_entry_missing() { refused missing_entry "missing from the archive"; }
t_type_mismatch() { refused type_mismatch "type differs"; }

# a real checkpoint of ~12 parts
push_small() {
	mkdir -p ck/sub && head -c 3000000 /dev/urandom >ck/sub/r.bin && echo hi >ck/a
	expect_rc 0 "$SR" push ck --job j --part-size 256K --store "$T/store"
	M=$T/store/j/ckpt/00000001/manifest.json
	D=$T/store/j/ckpt/00000001/data.tar.zst
}

t_flipped_byte_detected() {
	push_small
	part=$(python3 - "$M" "$D" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
p = m["parts"][5]
off = p["offset"] + p["size"] // 2
with open(sys.argv[2], "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x20]))
print(5)
EOF
)
	expect_rc 65 "$SR" verify --job j --store "$T/store"
	assert_contains "$ERR" "part $part "
	mkdir work && cd work
	expect_rc 65 "$SR" pull dest --job j --store "$T/store"
	assert_contains "$ERR" "part $part "
	assert_eq "$(ls -A)" "" "nothing left behind"
}

t_truncated_manifest_refused() {
	push_small
	truncate -s $(( $(stat -c %s "$M") / 2 )) "$M"
	expect_rc 65 "$SR" verify --job j --store "$T/store"
	assert_contains "$ERR" "manifest"
	expect_rc 65 "$SR" pull dest --job j --store "$T/store"
	assert_no_file dest
	expect_rc 0 "$SR" ls --job j --store "$T/store"
	assert_contains "$ERR" "skipping checkpoint 1"
}

t_manifest_wrong_file_hash_refused() {
	push_small
	python3 - "$M" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
for f in m["files"]:
    if f["path"] == "sub/r.bin":
        f["sha256"] = "0" * 64
json.dump(m, open(sys.argv[1], "w"))
EOF
	expect_rc 65 "$SR" verify --job j --store "$T/store"
	assert_contains "$ERR" "sub/r.bin"
	expect_rc 65 "$SR" pull dest --job j --store "$T/store"
	assert_contains "$ERR" "sub/r.bin"
	assert_eq "$(ls -A | grep -c spotrun-tmp)" 0 "temporary folders"
	assert_no_file dest
}

t_manifest_wrong_part_hash_refused() {
	push_small
	python3 - "$M" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["parts"][0]["sha256"] = "f" * 64
json.dump(m, open(sys.argv[1], "w"))
EOF
	expect_rc 65 "$SR" verify --job j --store "$T/store"
	assert_contains "$ERR" "part 0 "
	expect_rc 65 "$SR" pull dest --job j --store "$T/store"
	assert_no_file dest
}

t_missing_data_object() {
	push_small
	rm "$D"
	expect_rc 65 "$SR" verify --job j --store "$T/store"
	assert_contains "$ERR" "missing"
}

run_tests
