#!/usr/bin/env python3
"""torch_train.py - a PyTorch trainer speaking spotrun's child protocol.

NOT EXECUTED IN CI: PyTorch cannot be installed on the test machines, so
tests/cli/examples.sh only byte-compiles this file and checks (with Python's
ast module) that it uses the protocol.  The reference user that the tests do
run is examples/train.py (standard library only); this file shows the same
protocol with real model, optimizer and RNG state.  Run it yourself with:

    spotrun --job mlp --store file:///tmp/store -- python examples/torch_train.py

The protocol (docs/guide.md, "The child protocol"):

  SPOTRUN_CKPT_DIR     each checkpoint is a NEW folder here, step-NNNNNN/
                       (state.pt, meta.json), written as .step-NNNNNN.tmp and
                       renamed into place, never changed afterwards
  SPOTRUN_SOCKET       set: each folder is committed with `spotrun commit DIR`
                       ($SPOTRUN_BIN, else spotrun on PATH); unset (running
                       without spotrun): DIR/.spotrun-complete is written instead
  SPOTRUN_RESUME_DIR   resume: model, optimizer, step and every RNG state
                       (Python, torch CPU, CUDA) come back from state.pt
  SPOTRUN_NOTICE_FILE  JSON written on a notice; its deadline_unix is logged,
                       and the file appearing counts as a notice too
  notice signal        SIGUSR1 (spotrun's default --notice-signal) or SIGTERM
                       set a flag; between two steps the trainer writes a final
                       checkpoint, commits it and exits 75

The checkpoint files are plain torch.save() pickles (.pt), not safetensors:
they hold the optimizer state and RNG states as well as the weights.

Exit codes: 0 done, 64 usage, 65 the resume checkpoint is unusable, 74 a
checkpoint could not be written or committed, 75 stopped after a notice.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import torch
from torch import nn

EX_DATAERR, EX_IOERR, EX_TEMPFAIL = 65, 74, 75
FORMAT = "spotrun-torch-example/1"

# set by the signal handler, read between steps: the handler itself does
# nothing else (no I/O in a signal handler)
notice_received = False


def on_notice(signum, frame):
    global notice_received
    notice_received = True


def log(msg):
    print("torch_train.py: " + msg, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description="PyTorch example of spotrun's child protocol")
    p.add_argument("--steps", type=int, default=2000, help="total steps (default 2000)")
    p.add_argument("--ckpt-every", type=int, default=200, metavar="K",
                   help="checkpoint every K steps, and after the last (default 200)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args()


def make_model():
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 1))


def batch_for(step, args, device):
    # synthetic regression data drawn from a generator seeded by the step, so
    # a resumed run sees exactly the batches an uninterrupted run would
    g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    x = torch.randn(args.batch, 64, generator=g)
    y = x[:, :8].sum(dim=1, keepdim=True).sin()
    return x.to(device), y.to(device)


def rng_state():
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(folder, step):
    """Declare FOLDER finished: `spotrun commit` under spotrun, else the marker."""
    if os.environ.get("SPOTRUN_SOCKET"):
        spotrun = os.environ.get("SPOTRUN_BIN") or shutil.which("spotrun") or "spotrun"
        r = subprocess.run([spotrun, "commit", folder, "--step", str(step)], timeout=60)
        if r.returncode != 0:
            log("spotrun commit %s failed (exit %d)" % (folder, r.returncode))
            sys.exit(EX_IOERR)
    else:
        with open(os.path.join(folder, ".spotrun-complete"), "w"):
            pass


def save_checkpoint(ckpt_dir, step, model, optimizer, args):
    """Write step-NNNNNN/ under a temporary name, rename it into place, commit."""
    name = "step-%06d" % step
    final = os.path.join(ckpt_dir, name)
    if os.path.isdir(final):      # already written (e.g. the notice came right after)
        return final
    tmp = os.path.join(ckpt_dir, "." + name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)   # leftover of a killed attempt
    try:
        os.makedirs(tmp)
        torch.save({"format": FORMAT, "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": rng_state()},
                   os.path.join(tmp, "state.pt"))
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump({"format": FORMAT, "step": step, "seed": args.seed,
                       "lr": args.lr, "time": time.time()}, f)
        for fn in ("state.pt", "meta.json"):
            fsync_path(os.path.join(tmp, fn))
        os.rename(tmp, final)       # atomic: spotrun never sees a half folder
        fsync_path(ckpt_dir)
    except OSError as e:
        log("cannot write checkpoint %s: %s" % (final, e))
        sys.exit(EX_IOERR)
    commit(final, step)
    log("checkpoint %s committed" % name)
    return final


def load_checkpoint(resume_dir, model, optimizer):
    """Restore model, optimizer and RNG state; returns the step to continue from."""
    path = os.path.join(resume_dir, "state.pt")
    try:
        # weights_only: tensors, dicts, lists, tuples and numbers only (no code)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a missing or damaged file: refuse, do not start over
        log("cannot load %s: %s" % (path, e))
        sys.exit(EX_DATAERR)
    if ckpt.get("format") != FORMAT:
        log("%s is not a %s checkpoint" % (path, FORMAT))
        sys.exit(EX_DATAERR)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])  # moves state to the params' device
    set_rng_state(ckpt["rng"])
    return int(ckpt["step"])


def notice_deadline():
    """Seconds left before the machine goes away, from SPOTRUN_NOTICE_FILE, or None."""
    path = os.environ.get("SPOTRUN_NOTICE_FILE")
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            notice = json.load(f)
        return float(notice["deadline_unix"]) - time.time()
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0   # present but unreadable (still being written): act at once


def main():
    args = parse_args()
    signal.signal(signal.SIGUSR1, on_notice)   # spotrun's default --notice-signal
    signal.signal(signal.SIGTERM, on_notice)   # the grace deadline, or a scheduler

    ckpt_dir = os.environ.get("SPOTRUN_CKPT_DIR", "./ckpt")
    os.makedirs(ckpt_dir, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    device = torch.device(args.device)
    model = make_model().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = nn.MSELoss()

    step = 0
    resume_dir = os.environ.get("SPOTRUN_RESUME_DIR")
    if resume_dir:
        step = load_checkpoint(resume_dir, model, optimizer)
        log("resumed from %s at step %d (restarts: %s)"
            % (resume_dir, step, os.environ.get("SPOTRUN_RESTARTS", "0")))

    model.train()
    while step < args.steps:
        x, y = batch_for(step, args, device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 100 == 0:
            log("step %d loss %.5f" % (step, loss.item()))

        left = notice_deadline()
        if notice_received or left is not None:
            if left is not None:
                log("notice: %.1f s before the deadline" % left)
            save_checkpoint(ckpt_dir, step, model, optimizer, args)
            log("stopping after a notice at step %d" % step)
            sys.exit(EX_TEMPFAIL)
        if step % args.ckpt_every == 0:
            save_checkpoint(ckpt_dir, step, model, optimizer, args)

    save_checkpoint(ckpt_dir, step, model, optimizer, args)
    log("done: %d steps" % step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
