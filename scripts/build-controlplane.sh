#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by the tests and the demo, and caches it outside the repository.
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl, helm, krew,
#   validate-krew-manifest  (built with `go`)
#   the volsync CRDs, copied from the github.com/backube/volsync Go module
#
# Pins live in the go.mod files under tools/controlplane/ (one module per upstream, so their dependency graphs never
# mix). The cache directory is keyed by a hash of those files, so a changed pin rebuilds and an unchanged one is free.
# Prints the cache directory on stdout; progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/controlplane"

k8s_version=$(sed -nE "s/^(require)?[[:space:]]*k8s\.io\/kubernetes (v[0-9.]+).*/\2/p" "$tools/kubernetes/go.mod" | head -n1)
volsync_version=$(cat "$tools/volsync.version")
key=$(cat "$tools"/*/go.mod "$tools"/*/go.sum "$tools/volsync.version" "$tools/ecosystem.versions" "$0" \
  | sha256sum | cut -c1-12)
cache="${PVC_RESTORE_CACHE:-$HOME/.cache/pvc-restore}/controlplane-$k8s_version-$key"

if [ -f "$cache/complete" ]; then
  echo "$cache"
  exit 0
fi

command -v go >/dev/null || { echo "go is required (Go >= 1.26) to build the control plane" >&2; exit 1; }
log() { printf '[build-controlplane] %s\n' "$*" >&2; }
started=$(date +%s)
work="$cache.partial"
rm -rf "$work"
mkdir -p "$work/bin" "$work/crds"

# Kubernetes: report the real version (the apiserver derives its emulation version from major/minor).
ver=${k8s_version#v}
major=${ver%%.*}
minor=${ver#*.}; minor=${minor%%.*}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit=0000000000000000000000000000000000000000"
done

log "building Kubernetes $k8s_version (a cold build takes 10-20 minutes on 2 cores)"
(cd "$tools/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$work/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)

log "building etcd"
(cd "$tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3 \
  && go build -trimpath -ldflags "-s -w" -o "$work/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3)

log "building kwok"
(cd "$tools/kwok" && go build -trimpath -ldflags "-s -w" -o "$work/bin/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)

log "building helm and krew (packaging tools for the chart and plugin tests)"
helm_version=$(sed -nE 's/^[[:space:]]*helm\.sh\/helm\/v3 (v[0-9.]+).*/\1/p' "$tools/helm/go.mod" | head -n1)
(cd "$tools/helm" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" \
  -o "$work/bin/helm" helm.sh/helm/v3/cmd/helm)
(cd "$tools/krew" && go build -trimpath -ldflags "-s -w" -o "$work/bin/" \
  sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest)
cp "$work/bin/krew" "$work/bin/kubectl-krew"

log "fetching volsync $volsync_version CRDs"
volsync_dir=$(cd "$tools/kwok" && go mod download -json "github.com/backube/volsync@$volsync_version" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
cp "$volsync_dir"/config/crd/bases/volsync.backube_replicationsources.yaml \
   "$volsync_dir"/config/crd/bases/volsync.backube_replicationdestinations.yaml "$work/crds/"
chmod -R u+w "$work/crds"

log "fetching Flux, Argo CD and KEDA CRDs"
mkdir -p "$work/crds-ecosystem"
grep -v '^#' "$tools/ecosystem.versions" | while read -r module version file; do
  [ -n "$module" ] || continue
  dir=$(cd "$tools/kwok" && go mod download -json "$module@$version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  cp "$dir/$file" "$work/crds-ecosystem/"
done
chmod -R u+w "$work/crds-ecosystem"

"$work/bin/kube-apiserver" --version >&2
"$work/bin/etcd" --version | head -n1 >&2
"$work/bin/kwokctl" --version >&2 || true
"$work/bin/helm" version --short >&2

echo "$k8s_version" > "$work/version"
rm -rf "$cache"
mv "$work" "$cache"
# Builds of other pins are superseded (about 600 MB each); running clusters keep their own copies of the binaries.
find "$(dirname "$cache")" -maxdepth 1 -name 'controlplane-*' ! -name '*.partial' ! -path "$cache" \
  -exec rm -rf {} + 2>/dev/null || true
echo "built in $(( $(date +%s) - started ))s" > "$cache/complete"
log "done in $(( $(date +%s) - started ))s: $cache"
echo "$cache"
