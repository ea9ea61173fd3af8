#!/usr/bin/env bash
# Builds the krew archive of the kubectl plugin for the machine this runs on: a self-contained executable
# (PyInstaller, one file) plus LICENSE, as pvc-restore_<os>_<arch>.tar.gz (.zip on Windows), and writes a copy of
# krew/pvc-restore.yaml with this platform's uri and sha256 filled in.
#
#   scripts/build-krew-archive.sh OUTDIR [URI]     (URI defaults to the archive's file:// path)
# Prints the archive path and the manifest path.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:?usage: build-krew-archive.sh OUTDIR [URI]}" && cd "$1" && pwd)
python=${PYTHON:-$repo/.venv/bin/python}

os=$(uname -s | tr '[:upper:]' '[:lower:]'); case "$os" in mingw*|msys*|cygwin*) os=windows ;; esac
arch=$(uname -m); case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
exe=kubectl-pvc_restore; [ "$os" = windows ] && exe=kubectl-pvc_restore.exe

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$python" -m pip install --quiet "pyinstaller>=6"
cat > "$work/entry.py" <<'PY'
from kubectl_pvc_restore.entry import main
main()
PY
(cd "$work" && "$python" -m PyInstaller --onefile --clean --noconfirm --log-level WARN --name "${exe%.exe}" \
  --collect-submodules kubectl_pvc_restore --collect-submodules kr8s --collect-submodules box \
  --copy-metadata pvc-restore --distpath "$work/dist" \
  --workpath "$work/build" --specpath "$work" entry.py)
mkdir "$work/pkg"; cp "$work/dist/$exe" "$repo/LICENSE" "$work/pkg/"
if [ "$os" = windows ]; then
  archive="$out/pvc-restore_${os}_${arch}.zip"; (cd "$work/pkg" && "$python" -m zipfile -c "$archive" "$exe" LICENSE)
else
  archive="$out/pvc-restore_${os}_${arch}.tar.gz"; tar -C "$work/pkg" -czf "$archive" "$exe" LICENSE
fi
sha=$(sha256sum "$archive" | cut -d' ' -f1)
uri=${2:-file://$archive}
"$python" - "$repo/krew/pvc-restore.yaml" "$out/pvc-restore.yaml" "$os" "$arch" "$uri" "$sha" <<'PY'
import sys, yaml
src, dst, os_, arch, uri, sha = sys.argv[1:]
manifest = yaml.safe_load(open(src))
for platform in manifest["spec"]["platforms"]:
    if platform["selector"]["matchLabels"] == {"os": os_, "arch": arch}:
        platform["uri"], platform["sha256"] = uri, sha
        break
else:
    sys.exit(f"krew/pvc-restore.yaml has no platform {os_}/{arch}")
yaml.safe_dump(manifest, open(dst, "w"), sort_keys=False)
PY
echo "$archive"
echo "$out/pvc-restore.yaml"
