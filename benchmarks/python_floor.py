"""The least any Python client needs to list PVCRestores in all namespaces here: a yardstick for
``benchmarks/cli_speed.py``, not part of the plugin (issue 14's `list -A` goal).

    python benchmarks/python_floor.py KUBECONFIG [--click]

Only the standard library and PyYAML: the kubeconfig's current context read with PyYAML's C loader when it has one,
one HTTPS GET (``http.client``, ``ssl`` with the kubeconfig's CA and client certificate or token), the JSON decoded
and one line printed per PVCRestore. No option parsing, no error handling, no retries, no timeouts, no credentials
plugins: what the plugin does beyond this is what it is for. ``--click`` also imports click, the prescribed CLI
library, and nothing more. Its wall time next to ``kubectl get pvcrestores -A`` shows how close a Python CLI can get.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import sys
import tempfile
import urllib.parse

import yaml

PATH = "/apis/pvc-restore.homelab-helper.benfiola.com/v1/pvcrestores"


def _file(entry: dict, key: str, tmp: str) -> str | None:
    """``key``'s file, or ``key-data`` written to a file (ssl loads certificates from files only)."""
    if entry.get(key):
        return entry[key]
    data = entry.get(f"{key}-data")
    if not data:
        return None
    path = os.path.join(tmp, key)
    with open(path, "wb") as out:
        out.write(base64.b64decode(data))
    return path


def main() -> int:
    if "--click" in sys.argv:
        import click  # noqa: F401 - its import time is what is measured
    with open(sys.argv[1]) as f:
        config = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    with tempfile.TemporaryDirectory() as tmp:
        tls = ssl.create_default_context(cafile=_file(cluster, "certificate-authority", tmp))
        cert = _file(user, "client-certificate", tmp)
        if cert:
            tls.load_cert_chain(cert, _file(user, "client-key", tmp))
        server = urllib.parse.urlsplit(cluster["server"])
        conn = http.client.HTTPSConnection(server.hostname, server.port or 443, context=tls)
        headers = {"Accept": "application/json"}
        if user.get("token"):
            headers["Authorization"] = f"Bearer {user['token']}"
        conn.request("GET", PATH, headers=headers)
        items = json.loads(conn.getresponse().read())["items"]
    for item in items:
        meta, status = item["metadata"], item.get("status") or {}
        print(meta["namespace"], meta["name"], item["spec"].get("pvc"), status.get("phase") or "Pending")
    return 0


if __name__ == "__main__":
    sys.exit(main())
