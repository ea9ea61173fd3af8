#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by the tests and the demo, and caches it outside the repository.
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl, helm, krew,
#   validate-krew-manifest, actionlint  (built with `go`)
#   the volsync CRDs, copied from the github.com/backube/volsync Go module
#
# Pins live in the go.mod files under tools/controlplane/ (one module per upstream, so their dependency graphs never
# mix). The cache directory is keyed by the Kubernetes version and a hash of those files, so a changed pin rebuilds
# and an unchanged one is free.
#
# PVC_RESTORE_KUBERNETES_VERSION=v1.N.P builds another Kubernetes release than the pinned one (the compatibility
# runs, scripts/compat.sh): a wrapper module is generated for it in the cache (k8s.io/kubernetes v1.N.P with every
# staging module it replaces with ./staging/... replaced by v0.N.P, as k8s.io/kubernetes's own go.mod lists them) and
# resolved with `go mod tidy`; etcd, kwok, helm and krew stay pinned. Each version is cached in a directory of its
# own; a newer build of the same version supersedes the older one, other versions are kept.
# Prints the cache directory on stdout; progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/controlplane"

pinned=$(sed -nE "s/^(require)?[[:space:]]*k8s\.io\/kubernetes (v[0-9.]+).*/\2/p" "$tools/kubernetes/go.mod" | head -n1)
k8s_version=${PVC_RESTORE_KUBERNETES_VERSION:-$pinned}
[[ "$k8s_version" =~ ^v1\.[0-9]+\.[0-9]+$ ]] \
  || { echo "PVC_RESTORE_KUBERNETES_VERSION=$k8s_version: give a release as v1.N.P" >&2; exit 1; }
volsync_version=$(cat "$tools/volsync.version")
# shellcheck source=scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
key=$( (cat "$tools"/*/go.mod "$tools"/*/go.sum "$tools/volsync.version" "$tools/ecosystem.versions" "$0" \
          "$repo/scripts/lib/cache.sh"
        echo "$k8s_version") | sha256sum | cut -c1-12)
cache="$cache_root/controlplane-$k8s_version-$key"
log() { printf '[build-controlplane] %s\n' "$*" >&2; }

# One build per Kubernetes version at a time (another version builds beside it).
cache_begin "the control plane ($k8s_version)" "controlplane-$k8s_version"
mkdir -p "$work/bin" "$work/crds"

k8s_mod="$tools/kubernetes"
if [ "$k8s_version" != "$pinned" ]; then
  log "generating a wrapper module for Kubernetes $k8s_version (pinned: $pinned)"
  k8s_mod="$work/src/kubernetes"
  mkdir -p "$k8s_mod"
  upstream_gomod=$(cd "$tools/kubernetes" && go mod download -json "k8s.io/kubernetes@$k8s_version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
  staging=$(sed -nE 's#^[[:space:]]*(k8s\.io/[A-Za-z0-9._-]+) => \./staging/.*#\1#p' "$upstream_gomod")
  [ -n "$staging" ] || { echo "no ./staging replaces in $upstream_gomod" >&2; exit 1; }
  staging_version="v0.${k8s_version#v1.}"
  {
    printf 'module github.com/benfiola/pvc-restore/tools/controlplane/kubernetes\n\ngo 1.26.0\n\n'
    printf 'require k8s.io/kubernetes %s\n\nreplace (\n' "$k8s_version"
    for module in $staging; do printf '\t%s => %s %s\n' "$module" "$module" "$staging_version"; done
    printf ')\n\ntool (\n'
    for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      printf '\tk8s.io/kubernetes/cmd/%s\n' "$cmd"
    done
    printf ')\n'
  } > "$k8s_mod/go.mod"
  (cd "$k8s_mod" && go mod tidy)
fi

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
(cd "$k8s_mod" && go build -trimpath -ldflags "$ldflags" -o "$work/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)

log "building etcd"
(cd "$tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3 \
  && go build -trimpath -ldflags "-s -w" -o "$work/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3)

log "building kwok"
(cd "$tools/kwok" && go build -trimpath -ldflags "-s -w" -o "$work/bin/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)

log "building helm and krew (packaging tools for the chart and plugin tests)"
helm_version=$(sed -nE 's/^[[:space:]]*helm\.sh\/helm\/v3 (v[0-9.]+).*/\1/p' "$tools/helm/go.mod" | head -n1)
# As Helm's own release builds do (its Makefile): `helm template` without --kube-version assumes the Kubernetes minor
# of the client-go it is built with, not its source default 1.20 (below the chart's kubeVersion).
helm_k8s_minor=$(cd "$tools/helm" && go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done
(cd "$tools/helm" && go build -trimpath -ldflags "$helm_ldflags" -o "$work/bin/helm" helm.sh/helm/v3/cmd/helm)
(cd "$tools/krew" && go build -trimpath -ldflags "-s -w" -o "$work/bin/" \
  sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest)
cp "$work/bin/krew" "$work/bin/kubectl-krew"

log "building actionlint (checks the GitHub Actions workflows)"
actionlint_version=$(sed -nE 's/^[[:space:]]*github\.com\/rhysd\/actionlint (v[0-9.]+).*/\1/p' \
  "$tools/actionlint/go.mod" | head -n1)
(cd "$tools/actionlint" && go build -trimpath \
  -ldflags "-s -w -X github.com/rhysd/actionlint.version=$actionlint_version" \
  -o "$work/bin/actionlint" github.com/rhysd/actionlint/cmd/actionlint)

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
"$work/bin/etcd" --version | sed -n 1p >&2  # sed reads it all: no SIGPIPE under pipefail
"$work/bin/kwokctl" --version >&2 || true
"$work/bin/helm" version --short >&2
"$work/bin/actionlint" -version | sed -n 1p >&2

echo "$k8s_version" > "$work/version"
if [ "$k8s_mod" != "$tools/kubernetes" ]; then  # keep the generated module: what this build was built from
  cp "$k8s_mod/go.mod" "$work/kubernetes.go.mod"
  cp "$k8s_mod/go.sum" "$work/kubernetes.go.sum"
  rm -rf "$work/src"
fi
# Older builds of the same versions are superseded (about 600 MB each); builds of other versions are kept (the
# compatibility runs use them). Running clusters keep their own copies of the binaries.
cache_finish "controlplane-$k8s_version-????????????"
echo "$cache"
