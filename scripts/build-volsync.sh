#!/usr/bin/env bash
# Builds volsync's manager and its restic mover's tools, and caches them outside the repository.
#
#   volsync-manager (github.com/backube/volsync/cmd, built with the disable_syncthing tag), restic, rest-server
#                   (built with `go`)
#   mover-restic/   volsync's restic mover scripts (entry.sh), copied from the github.com/backube/volsync Go module
#   crds/           the snapshot.storage.k8s.io CRDs the manager watches (VolumeSnapshot, -Content, -Class); without
#                   them it cannot start. And this volsync release's own ReplicationSource/Destination CRDs (the
#                   control plane comes with those of tools/controlplane/volsync.version; devtools/real_volsync.py
#                   installs these over them, so the manager always runs with its own release's CRDs).
#   crds-optional/  the populator.storage.k8s.io VolumePopulator CRD: not needed to start; when it is installed the
#                   manager registers itself with a cluster-scoped VolumePopulator object at start-up.
#
# Pins live in the go.mod files under tools/volsync/ (one module per upstream, so their dependency graphs never mix).
# The cache directory is keyed by a hash of those files and of this script, so a changed pin rebuilds and an unchanged
# one is free. PVC_RESTORE_VOLSYNC_VERSION=vX.Y.Z builds another volsync release than the pinned one (its dependencies
# are resolved afresh in a scratch copy of the wrapper module; restic and rest-server stay pinned). Each volsync
# version is cached in a directory of its own (scripts/compat.sh runs several).
# Prints the cache directory on stdout; progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/volsync"

pinned=$(sed -nE "s/^(require)?[[:space:]]*github\.com\/backube\/volsync (v[0-9.]+).*/\2/p" "$tools/volsync/go.mod" \
  | head -n1)
volsync_version=${PVC_RESTORE_VOLSYNC_VERSION:-$pinned}
[[ "$volsync_version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || { echo "PVC_RESTORE_VOLSYNC_VERSION=$volsync_version: give a release as vX.Y.Z" >&2; exit 1; }
# shellcheck source=scripts/lib/cache.sh
. "$repo/scripts/lib/cache.sh"
key=$( (cat "$tools"/*/go.mod "$tools"/*/go.sum "$0" "$repo/scripts/lib/cache.sh"; echo "$volsync_version") \
  | sha256sum | cut -c1-12)
cache="$cache_root/volsync-$volsync_version-$key"
log() { printf '[build-volsync] %s\n' "$*" >&2; }

# One build per volsync version at a time (another version builds beside it).
cache_begin "volsync $volsync_version" "volsync-$volsync_version"
mkdir -p "$work/bin" "$work/crds" "$work/crds-optional"

volsync_mod="$tools/volsync"
if [ "$volsync_version" != "$pinned" ]; then
  log "resolving volsync $volsync_version (pinned: $pinned)"
  volsync_mod="$work/src/volsync"
  mkdir -p "$volsync_mod"
  cp "$tools/volsync/go.mod" "$tools/volsync/go.sum" "$volsync_mod/"
  (cd "$volsync_mod" && go mod edit -require "github.com/backube/volsync@$volsync_version" && go mod tidy)
fi

log "building volsync $volsync_version manager (a cold build of all three takes 4-8 minutes on 2 cores)"
(cd "$volsync_mod" && go build -trimpath -tags disable_syncthing \
  -ldflags "-s -w -X main.volsyncVersion=$volsync_version" -o "$work/bin/volsync-manager" github.com/backube/volsync/cmd)

log "building restic"
restic_version=$(sed -nE 's/^[[:space:]]*github\.com\/restic\/restic (v[0-9.]+).*/\1/p' "$tools/restic/go.mod" | head -n1)
(cd "$tools/restic" && go build -trimpath -ldflags "-s -w -X main.version=${restic_version#v}" \
  -o "$work/bin/restic" github.com/restic/restic/cmd/restic)

log "building rest-server"
rest_server_version=$(sed -nE 's/^[[:space:]]*github\.com\/restic\/rest-server (v[0-9.]+).*/\1/p' \
  "$tools/rest-server/go.mod" | head -n1)
(cd "$tools/rest-server" && go build -trimpath -ldflags "-s -w -X main.version=${rest_server_version#v}" \
  -o "$work/bin/rest-server" github.com/restic/rest-server/cmd/rest-server)

log "copying volsync $volsync_version's restic mover scripts and snapshot CRDs"
volsync_dir=$(cd "$volsync_mod" && go list -m -f '{{.Dir}}' github.com/backube/volsync)
cp -R "$volsync_dir/mover-restic" "$work/"
cp "$volsync_dir"/hack/crds/*.yaml "$work/crds/"
cp "$volsync_dir"/config/crd/bases/volsync.backube_replicationsources.yaml \
   "$volsync_dir"/config/crd/bases/volsync.backube_replicationdestinations.yaml "$work/crds/"
cp "$volsync_dir/internal/controller/test/populator.storage.k8s.io_volumepopulators.yaml" "$work/crds-optional/"
chmod -R u+w "$work/mover-restic" "$work/crds" "$work/crds-optional"
chmod a+x "$work/mover-restic/entry.sh"
rm -rf "$work/src"

"$work/bin/restic" version >&2
"$work/bin/rest-server" --version >&2

echo "$volsync_version" > "$work/version"
# Older builds of the same volsync version are superseded (about 100 MB each); other versions are kept.
cache_finish "volsync-$volsync_version-????????????"
echo "$cache"
