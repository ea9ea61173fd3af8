#!/usr/bin/env bash
# The compatibility subset on chosen Kubernetes and volsync versions: the seed workflow (a restore by annotation, to
# Finished), the CRD's validation rules, the chart's admission policies and its install, the plugin against the
# server, and a restore of real files by real volsync (its manager and restic mover of that version).
#
#   scripts/compat.sh                          # the matrix: the oldest and newest Kubernetes x every volsync proven
#   scripts/compat.sh v1.34.4 v0.16.0          # one cell
#   scripts/compat.sh v1.34.4                  # one Kubernetes version with the pinned volsync
#   scripts/compat.sh v1.36.3 v0.14.0 -x       # further arguments go to pytest
#
# The defaults come from kubectl_pvc_restore/support.py (KUBERNETES_PROVEN, VOLSYNC_PROVEN). Each version is built
# once and cached (scripts/build-controlplane.sh, scripts/build-volsync.sh: a cold Kubernetes build takes 10-20
# minutes on 2 cores, volsync 4-8). Each cell prints one line "[compat] kubernetes K volsync V: passed|FAILED ... in
# Ns" (the build excluded) and appends it, tab-separated, to $PVC_RESTORE_COMPAT_RESULTS if set. The pytest output of
# a cell goes to $PVC_RESTORE_COMPAT_LOGS/<cell>.log (default: a temporary directory, shown when it fails).
# Exit status: 0 when every cell passed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# The subset. Real volsync: only the annotation restore (the seed workflow, latest/previous/as-of on real bytes).
tests=(
  tests/test_controlplane.py
  tests/test_restore_flow.py::test_annotation_restores_latest_with_workloads_down
  tests/test_security.py::test_a_finished_restore_never_runs_again
  tests/test_security.py::test_recorded_replicas_cannot_be_changed_during_the_restore
  tests/test_security.py::test_the_api_server_refuses_bad_specs
  tests/test_security.py::test_the_timeline_only_grows
  tests/test_admission_policies.py
  tests/test_admission_guard.py
  tests/test_packaging.py::test_chart_installs_under_restricted_pss_and_its_rbac_is_enough
  tests/test_cli.py::test_dry_run_shows_the_plan_and_changes_nothing
  tests/test_cli.py::test_start_wait_succeeds_and_list_describe_show_it
  tests/test_cli.py::test_through_kubectl_plugin_discovery
  tests/test_doctor_and_version.py::test_doctor_reports_the_installed_crd_as_current_and_version_prints_its_served_versions
  tests/test_support.py
  tests/test_real_volsync.py::test_annotation_restores_latest_previous_and_as_of_on_real_bytes
)

run_cell() {  # $1 = Kubernetes version, $2 = volsync version, then pytest arguments
  local kubernetes=$1 volsync=$2 started status summary log
  shift 2
  export PVC_RESTORE_KUBERNETES_VERSION=$kubernetes PVC_RESTORE_VOLSYNC_VERSION=$volsync
  echo "[compat] kubernetes $kubernetes volsync $volsync: building (or finding cached) and setting up" >&2
  bash scripts/setup.sh  # the virtualenv, and these two versions (the build scripts read the two variables)
  log="$logs/kubernetes-$kubernetes-volsync-$volsync.log"
  started=$(date +%s)
  if .venv/bin/python -m pytest -p no:cacheprovider -q "${tests[@]}" "$@" > "$log" 2>&1; then
    status=passed
  else
    status=FAILED
  fi
  summary=$(grep -E '[0-9]+ (passed|failed|error)' "$log" | tail -n1 | sed -E 's/^=+ //; s/ =+$//')
  elapsed=$(( $(date +%s) - started ))
  echo "[compat] kubernetes $kubernetes volsync $volsync: $status ($summary) in ${elapsed}s"
  if [ -n "${PVC_RESTORE_COMPAT_RESULTS:-}" ]; then
    printf '%s\t%s\t%s\t%s\t%s\n' "$kubernetes" "$volsync" "$status" "$elapsed" "$summary" \
      >> "$PVC_RESTORE_COMPAT_RESULTS"
  fi
  if [ "$status" != passed ]; then
    sed 's/^/[compat] | /' "$log" | tail -n 200
    return 1
  fi
}

# support.py needs only the standard library (the package imports nothing at import time).
support() { "${PYTHON:-python3}" -c "import sys; sys.path.insert(0, '.'); from kubectl_pvc_restore import support as s; $1"; }
read -r -a proven_kubernetes <<< "$(support 'print(s.KUBERNETES_PROVEN[0], s.KUBERNETES_PROVEN[-1])')"
read -r -a proven_volsync <<< "$(support 'print(*s.VOLSYNC_PROVEN)')"

logs=${PVC_RESTORE_COMPAT_LOGS:-$(mktemp -d)}
mkdir -p "$logs"

if [ $# -gt 0 ] && [[ "$1" =~ ^v1\. ]]; then
  kubernetes=$1; shift
  volsync=${proven_volsync[0]}
  if [ $# -gt 0 ] && [[ "$1" =~ ^v0\. ]]; then volsync=$1; shift; fi
  run_cell "$kubernetes" "$volsync" "$@"
  exit
fi

failed=0
for kubernetes in "${proven_kubernetes[@]}"; do
  for volsync in "${proven_volsync[@]}"; do
    run_cell "$kubernetes" "$volsync" "$@" || failed=1
  done
done
exit $failed
