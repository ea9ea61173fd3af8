#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh machine: the virtualenv at .venv with the project and its test
# dependencies, the cached local control plane (scripts/build-controlplane.sh), volsync's manager, restic and
# rest-server (scripts/build-volsync.sh), and Prometheus' promtool, which checks the chart's alerting rules
# (scripts/build-promtool.sh).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python >= 3.10 is required" >&2; exit 1; }
  "$python" -m venv .venv
fi
stamp=.venv/.pvc-restore-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$want" > "$stamp"
fi
# Debian's restic (the `snapshots` tests read a real restic repository) and tmux (a test drives the real TUI).
missing=()
command -v restic >/dev/null || missing+=(restic)
command -v tmux >/dev/null || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "the tests need: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
bash scripts/build-controlplane.sh >/dev/null
bash scripts/build-volsync.sh >/dev/null
bash scripts/build-promtool.sh >/dev/null
