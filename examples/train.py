#!/usr/bin/env python3
"""train.py - the toy trainer: the reference user of spotrun's child protocol.

A deterministic stand-in for a training job (Python standard library only).
Its state is a vector of float32 values; every step updates a rolling window
of it, so the state after step S depends only on --seed, --size-mb and S, and
an interrupted run that resumes ends with the same digest as one that never
stopped.  It speaks the protocol of DESIGN.md section 3 "Child protocol":

  SPOTRUN_CKPT_DIR     checkpoints go into NEW folders here: step-NNNNNN/
                       (state.bin, meta.json), written as .step-NNNNNN.tmp
                       and renamed into place, never changed afterwards
                       (default ./ckpt)
  SPOTRUN_SOCKET       set: each folder is committed with `spotrun commit DIR`
                       ($SPOTRUN_BIN, else spotrun on PATH); unset: the folder
                       gets a .spotrun-complete marker instead
  SPOTRUN_RESUME_DIR   resume from this checkpoint folder (sha256 verified)
  SPOTRUN_NOTICE_FILE  when this path exists, act as on a notice
  SPOTRUN_RESTARTS     --fail-at-step only fails when this is 0 or unset

On the notice signal (--notice-signal, default SIGUSR1) or SIGTERM the trainer
finishes the current step, checkpoints it (unless that step already is) and
exits 75.  When all steps are done it checkpoints the last step, prints one
line `digest HEX` on stdout and exits 0.  Everything else goes to stderr.

Exit codes: 0 done, 1 --fail-at-step, 64 usage, 65 the resume checkpoint
failed verification or does not match the arguments, 73 a step folder already
exists with other content, 74 a checkpoint could not be written, 75 stopped
after a notice (the newest checkpoint is written and committed).

The digest is SHA-256 over the state as little-endian float32 bytes followed by
the step count as an unsigned 64-bit little-endian integer.
"""

import argparse
import array
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

EX_USAGE, EX_DATAERR, EX_CANTCREAT, EX_IOERR, EX_TEMPFAIL = 64, 65, 73, 74, 75
FORMAT = "spotrun-toy-trainer/1"
WINDOW = 4096          # values updated per step
DECAY = 0.999
SLICE = 0.01           # seconds: the simulated work sleeps in slices this long
COMMIT_TIMEOUT = 30
BIG_ENDIAN = sys.byteorder == "big"
# sign bit kept, exponent forced to 0x7C or 0x7D: every initial value is a
# finite float in +-[0.125, 0.5)
_EXP_TABLE = bytes((b & 0x80) | 0x3E for b in range(256))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(code, msg):
    log("train.py: error: " + msg)
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 64 (EX_USAGE), like spotrun
        self.print_usage(sys.stderr)
        die(EX_USAGE, message)


def parse_signal(name):
    s = name.strip().upper()
    try:
        sig = signal.Signals(int(s)) if s.isdigit() else \
            signal.Signals[s if s.startswith("SIG") else "SIG" + s]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError("unknown signal %r" % name)
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        raise argparse.ArgumentTypeError("%s cannot be caught" % sig.name)
    return sig


def positive(kind):
    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text)
        if not v > 0:
            raise argparse.ArgumentTypeError("must be > 0: %r" % text)
        return v
    return conv


def non_negative_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not v >= 0:
        raise argparse.ArgumentTypeError("must be >= 0: %r" % text)
    return v


def parse_args(argv):
    p = Parser(
        prog="train.py",
        description="Deterministic toy trainer speaking spotrun's child protocol "
                    "(checkpoint folders, commit, resume, notices).",
        epilog="Exit codes: 0 done (prints `digest HEX`), 1 --fail-at-step, 64 usage, "
               "65 bad resume checkpoint, 73 step folder exists with other content, "
               "74 checkpoint write failed, 75 stopped after a notice (checkpoint written).")
    p.add_argument("--steps", type=positive(int), default=50, metavar="N",
                   help="total steps to train (default 50)")
    p.add_argument("--ckpt-every", type=positive(int), default=10, metavar="K",
                   help="checkpoint every K steps, and after the last (default 10)")
    p.add_argument("--size-mb", type=positive(float), default=4.0, metavar="MB",
                   help="state size in MiB of float32 values (default 4; 0.1 is fine)")
    p.add_argument("--step-seconds", type=non_negative_float, default=0.05, metavar="S",
                   help="simulated work per step, cut short by a notice (default 0.05)")
    p.add_argument("--seed", type=int, default=1, help="initial state seed (default 1)")
    p.add_argument("--notice-signal", type=parse_signal, default=signal.SIGUSR1,
                   metavar="NAME", help="signal that announces an interruption "
                   "(default SIGUSR1; SIGTERM always counts as one too)")
    p.add_argument("--fail-at-step", type=positive(int), default=None, metavar="N",
                   help="exit 1 on reaching step N, only when SPOTRUN_RESTARTS is 0 "
                        "or unset (for crash-restart tests)")
    return p.parse_args(argv)


# ---- state -----------------------------------------------------------------

def initial_state(seed, n):
    raw = bytearray(random.Random(seed).randbytes(4 * n))
    raw[3::4] = raw[3::4].translate(_EXP_TABLE)
    return from_le_bytes(raw)


def from_le_bytes(data):
    st = array.array("f")
    st.frombytes(data)
    if BIG_ENDIAN:
        st.byteswap()
    return st


def le_bytes(st):
    if BIG_ENDIAN:
        st = array.array("f", st)
        st.byteswap()
    return st.tobytes()


def _updated(seg, lo, k):
    return array.array("f", [x * DECAY + ((((j * 40503) ^ k) & 1023) - 512) * 2e-6
                             for j, x in zip(range(lo, lo + len(seg)), seg)])


def train_step(st, step):
    """Apply step `step` (1-based): decay a rolling window and add a term that
    depends only on (step, index).  Every value is rounded to float32 on store,
    so the result is the same on every run."""
    n = len(st)
    w = min(WINDOW, n)
    lo = ((step - 1) * w) % n
    k = (step * 2654435761) & 0xFFFFFFFF
    hi = lo + w
    if hi <= n:
        st[lo:hi] = _updated(st[lo:hi], lo, k)
    else:
        st[lo:n] = _updated(st[lo:n], lo, k)
        st[0:hi - n] = _updated(st[0:hi - n], 0, k)


def digest(data, step):
    h = hashlib.sha256(data)
    h.update(struct.pack("<Q", step))
    return h.hexdigest()


# ---- notices ---------------------------------------------------------------

class Notice:
    def __init__(self, sig):
        self.why = None
        self.file = os.environ.get("SPOTRUN_NOTICE_FILE") or None
        for s in {sig, signal.SIGTERM}:
            signal.signal(s, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.why is None:
            self.why = signal.Signals(signum).name

    def pending(self):
        if self.why is None and self.file and os.path.exists(self.file):
            self.why = "notice file"
        return self.why is not None

    def work(self, seconds):
        """Sleep `seconds` of simulated work; return early on a notice."""
        end = time.monotonic() + seconds
        while not self.pending():
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(SLICE, left))


# ---- checkpoints -----------------------------------------------------------

def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def commit(folder):
    """Mark a finished folder: `spotrun commit` under spotrun, else the marker."""
    if not os.environ.get("SPOTRUN_SOCKET"):
        write_file(os.path.join(folder, ".spotrun-complete"), b"")
        return True
    exe = os.environ.get("SPOTRUN_BIN") or shutil.which("spotrun") or "spotrun"
    try:
        r = subprocess.run([exe, "commit", folder], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=COMMIT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        log("train.py: error: spotrun commit %s: %s" % (folder, e))
        return False
    if r.returncode != 0:
        log("train.py: error: spotrun commit %s exited %d: %s"
            % (folder, r.returncode, (r.stderr or r.stdout).strip()[:500]))
        return False
    return True


def checkpoint(ckpt_dir, st, step, args):
    t0 = time.monotonic()
    name = "step-%06d" % step
    final = os.path.join(ckpt_dir, name)
    data = le_bytes(st)
    sha = hashlib.sha256(data).hexdigest()
    try:
        os.makedirs(ckpt_dir, exist_ok=True)
        if os.path.lexists(final):
            # written before (an earlier run in this folder): never touch its
            # data; if it is the same state, make sure it is committed
            try:
                with open(os.path.join(final, "meta.json")) as f:
                    same = json.load(f).get("sha256") == sha
            except (OSError, ValueError, AttributeError):
                same = False
            if not same:
                die(EX_CANTCREAT, "%s already exists with other content" % final)
            log("%s already exists with this state, keeping it" % name)
            if not os.path.exists(os.path.join(final, ".spotrun-complete")):
                commit(final)
            return
        tmp = os.path.join(ckpt_dir, "." + name + ".tmp")
        if os.path.lexists(tmp):
            shutil.rmtree(tmp)
        os.mkdir(tmp)
        write_file(os.path.join(tmp, "state.bin"), data)
        meta = {
            "format": FORMAT,
            "step": step,
            "seed": args.seed,
            "size": len(st),
            "size_mb": args.size_mb,
            "dtype": "float32-le",
            "rng": None,  # the update is a pure function of (step, index)
            "sha256": sha,
        }
        write_file(os.path.join(tmp, "meta.json"),
                   (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
        os.rename(tmp, final)
        fsync_path(ckpt_dir, directory=True)
        committed = commit(final)
    except OSError as e:
        die(EX_IOERR, "writing checkpoint %s: %s" % (final, e))
    log("step %d checkpointed in %.3fs (%.1f MB)%s -> %s"
        % (step, time.monotonic() - t0, len(data) / 1048576.0,
           "" if committed else " NOT COMMITTED", final))


def load_resume(folder, args, n):
    """Load and verify a checkpoint folder; return (state, step)."""
    try:
        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(folder, "state.bin"), "rb") as f:
            data = f.read()
    except (OSError, ValueError) as e:
        die(EX_DATAERR, "cannot resume from %s: %s" % (folder, e))
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        die(EX_DATAERR, "cannot resume from %s: meta.json has no step" % folder)
    sha = hashlib.sha256(data).hexdigest()
    if sha != meta.get("sha256"):
        die(EX_DATAERR, "checkpoint %s is corrupt: state.bin sha256 %s, meta.json says %s"
            % (folder, sha, meta.get("sha256")))
    step = meta["step"]
    if len(data) != 4 * n or meta.get("size") != n:
        die(EX_DATAERR, "checkpoint %s holds %d values, --size-mb %g needs %d"
            % (folder, len(data) // 4, args.size_mb, n))
    if meta.get("seed") != args.seed:
        die(EX_DATAERR, "checkpoint %s was trained with --seed %s, not %d"
            % (folder, meta.get("seed"), args.seed))
    if not 0 <= step <= args.steps:
        die(EX_DATAERR, "checkpoint %s is at step %d, outside 0..--steps %d"
            % (folder, step, args.steps))
    want = os.environ.get("SPOTRUN_RESUME_STEP")
    if want and want.strip() != str(step):
        log("train.py: warning: SPOTRUN_RESUME_STEP=%s but %s is step %d"
            % (want, folder, step))
    return from_le_bytes(data), step


# ---- main ------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    notice = Notice(args.notice_signal)   # before anything slow
    n = max(1, int(args.size_mb * 1048576) // 4)
    ckpt_dir = os.path.abspath(os.environ.get("SPOTRUN_CKPT_DIR") or "ckpt")
    resume = os.environ.get("SPOTRUN_RESUME_DIR")
    restarts = (os.environ.get("SPOTRUN_RESTARTS") or "0").strip()

    if resume:
        st, step = load_resume(resume, args, n)
        last_ckpt = step              # that checkpoint exists and is committed
        log("resumed from step %d" % step)
    else:
        st, step = initial_state(args.seed, n), 0
        last_ckpt = None
    log("start: step %d of %d, %d values (%.1f MB), checkpoints every %d into %s"
        % (step, args.steps, n, 4 * n / 1048576.0, args.ckpt_every, ckpt_dir))

    while step < args.steps:
        if notice.pending():
            log("notice received (%s) at step %d" % (notice.why, step))
            if last_ckpt != step:
                checkpoint(ckpt_dir, st, step, args)
            log("notice: checkpointed step %d, exiting" % step)
            return EX_TEMPFAIL
        nxt = step + 1
        if args.fail_at_step == nxt and restarts == "0":
            log("simulated failure at step %d" % nxt)
            return 1
        notice.work(args.step_seconds)
        train_step(st, nxt)
        step = nxt
        if step % args.ckpt_every == 0 or step == args.steps:
            checkpoint(ckpt_dir, st, step, args)
            last_ckpt = step

    if last_ckpt != step:   # safety net: the loop checkpoints the last step
        checkpoint(ckpt_dir, st, step, args)
    print("digest %s" % digest(le_bytes(st), step), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
