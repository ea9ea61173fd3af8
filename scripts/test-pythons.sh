#!/usr/bin/env bash
# Runs the unit tests (every test that needs no Kubernetes control plane, in the files below) on each Python version
# the package claims: the "Programming Language :: Python :: 3.N" classifiers of pyproject.toml, which must agree
# with requires-python. Each version gets its own virtualenv .venv-py3.N with the project and its test extras, cached
# by a hash of pyproject.toml like scripts/setup.sh's .venv. A claimed version with no interpreter on this machine
# (pyenv's $PYENV_ROOT/versions/3.N.*, or python3.N on PATH) is skipped with a message.
#
#   scripts/test-pythons.sh                    # the default unit test files
#   scripts/test-pythons.sh tests/ -x          # other pytest arguments instead (control-plane tests still left out)
#   PYTHONS="3.10 3.13" scripts/test-pythons.sh
#
# Exit status: 0 when every version found passed (skipped versions do not fail), 1 otherwise.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

default_tests=(tests/test_selector.py tests/test_owner_graph.py tests/test_volsync_mapping.py
               tests/test_cli_bad_input.py tests/test_cli_imports.py tests/test_pythons.py)
[ $# -gt 0 ] || set -- "${default_tests[@]}"
host=$(command -v python3)

# The claimed versions: the classifiers, checked against requires-python (pip's vendored `packaging` parses it).
claimed=$("$host" - <<'PY'
import re, sys
text = open("pyproject.toml").read()
requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', text, re.M)[1]
versions = sorted(set(re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)),
                  key=lambda v: tuple(map(int, v.split("."))))
try:
    from packaging.specifiers import SpecifierSet
except ImportError:
    from pip._vendor.packaging.specifiers import SpecifierSet
spec = SpecifierSet(requires)
outside = [v for v in versions if f"{v}.0" not in spec]
lowest = next((f"3.{n}" for n in range(0, 40) if f"3.{n}.99" in spec), None)
if not versions or outside or lowest not in versions:
    sys.exit(f"pyproject.toml: the Python classifiers {versions} must lie within requires-python {requires!r} "
             f"and include its lowest version {lowest}")
print(" ".join(versions))
PY
)
pythons=${PYTHONS:-$claimed}

is_version() {  # $1 = interpreter, $2 = 3.N: it runs, is that version and can make a virtualenv with pip
  [ -x "$1" ] && "$1" -c "import sys, venv, ensurepip; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" >/dev/null 2>&1
}

find_python() {  # $1 = 3.N -> the path of a working python3.N, or nothing
  local v=$1 candidate
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v".* 2>/dev/null | sort -V -r) ; do
    candidate="$candidate/bin/python$v"
    if is_version "$candidate" "$v"; then echo "$candidate"; return; fi
  done
  for candidate in $(which -a "python$v" 2>/dev/null); do  # pyenv's shims answer only for selected versions
    if is_version "$candidate" "$v"; then echo "$candidate"; return; fi
  done
}

# A pytest plugin, for this run only: leave out the tests that need a control plane (a fixture, direct or not, that
# starts a ControlPlane, or the `cluster` marker) and the tests marked `pythons` (the ones that run this script).
plugins=$(mktemp -d)
trap 'rm -rf "$plugins"' EXIT
cat > "$plugins/pvc_restore_unit_only.py" <<'PY'
import inspect


def _starts_control_plane(fixturedef):
    try:
        return "ControlPlane(" in inspect.getsource(fixturedef.func)
    except (OSError, TypeError):
        return False


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = [d for ds in (info.name2fixturedefs.values() if info else ()) for d in ds]
        needs = (item.get_closest_marker("cluster") is not None or item.get_closest_marker("pythons") is not None
                 or any(_starts_control_plane(d) for d in defs))
        (drop if needs else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
PY

want=$(sha256sum pyproject.toml | cut -c1-16)
setup_venv() {  # $1 = 3.N, $2 = interpreter
  local v=$1 python=$2 venv=".venv-py$1"
  if ! is_version "$venv/bin/python" "$v"; then  # missing, or made by another interpreter that is gone
    rm -rf "$venv"
    "$python" -m venv "$venv" || return 1
  fi
  echo '*' > "$venv/.gitignore"  # Python >= 3.13 writes it itself; keeps git status clean on older ones
  if [ "$(cat "$venv/.pvc-restore-installed" 2>/dev/null)" != "$want" ]; then
    echo "[$v] installing the project with its test extras into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip || return 1
    "$venv/bin/python" -m pip install --quiet -e '.[test]' || return 1
    echo "$want" > "$venv/.pvc-restore-installed"
  fi
}

run_one() {  # $1 = 3.N, $2 = interpreter, then pytest arguments (each step checked: run under `if`)
  local v=$1 python=$2 venv=".venv-py$1"; shift 2
  setup_venv "$v" "$python" || return 1
  # Every module imports (a syntax or typing feature newer than the version fails here even without a test).
  "$venv/bin/python" - <<'PY' || return 1
import importlib, pkgutil
for package in ("kubectl_pvc_restore", "controller", "devtools"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, f"{package}."):
        importlib.import_module(info.name)
PY
  PYTHONPATH="$plugins${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" -m pytest -q -p pvc_restore_unit_only \
    -p no:cacheprovider "$@"
}

# The versions run side by side, at most one per CPU; each one's output is shown when it ends.
jobs_max=$(nproc 2>/dev/null || echo 2)
found=()
for v in $pythons; do
  python=$(find_python "$v")
  if [ -z "$python" ]; then
    echo "[$v] SKIPPED: no Python $v interpreter on this machine (pyenv install $v, or put python$v on PATH)"
    continue
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  ( if run_one "$v" "$python" "$@" > "$plugins/$v.log" 2>&1; then echo 0; else echo 1; fi > "$plugins/$v.status" ) &
  found+=("$v")
done
wait
status=0
for v in "${found[@]}"; do
  if [ "$(cat "$plugins/$v.status")" = 0 ]; then
    echo "[$v] passed: $(grep -E '[0-9]+ (passed|failed|error)' "$plugins/$v.log" | tail -n1)"
  else
    status=1
    echo "[$v] FAILED:"
    sed "s/^/[$v] /" "$plugins/$v.log"
  fi
done
[ ${#found[@]} -gt 0 ] || { echo "no claimed Python version found on this machine" >&2; exit 1; }
exit $status
