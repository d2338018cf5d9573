#!/bin/sh
# examples.sh - the PyTorch example (examples/torch_train.py) cannot run here:
# PyTorch is not installable on the test machines.  It is byte-compiled and
# its syntax tree is checked for the child protocol it must speak.
. "$(dirname "$0")/../lib.sh"
EX=$SPOTRUN_TOP/examples/torch_train.py

t_torch_example_compiles() {
	PYTHONPYCACHEPREFIX=$T/pyc python3 -m py_compile "$EX" || fail "py_compile $EX"
}

t_torch_example_uses_protocol() {
	out=$(python3 - "$EX" <<'PY'
import ast, sys
src = open(sys.argv[1]).read()
tree = ast.parse(src)
strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
need = {
    "SPOTRUN_CKPT_DIR": "SPOTRUN_CKPT_DIR" in strings,
    "SPOTRUN_RESUME_DIR": "SPOTRUN_RESUME_DIR" in strings,
    "SPOTRUN_NOTICE_FILE": "SPOTRUN_NOTICE_FILE" in strings,
    "SPOTRUN_BIN": "SPOTRUN_BIN" in strings,
    "SIGUSR1": "SIGUSR1" in attrs,
    "commit": "commit" in strings,
    "signal.signal": "signal.signal" in calls,
    "torch.save": "torch.save" in calls,
    "torch.load": "torch.load" in calls,
    "os.rename": "os.rename" in calls,
    "exit 75": any(isinstance(n, ast.Assign) and any(isinstance(c, ast.Constant) and c.value == 75
                   for c in ast.walk(n.value)) for n in ast.walk(tree)),
    "not executed in CI": "NOT EXECUTED IN CI" in (ast.get_docstring(tree) or ""),
}
print(" ".join(k for k, ok in need.items() if not ok) or "ok")
PY
)
	assert_eq "$out" ok "protocol elements missing from torch_train.py"
}

run_tests
