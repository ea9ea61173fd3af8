"""Shell completion through kubectl: kubectl runs ``kubectl_complete-pvc_restore ARGS... INCOMPLETE`` and shows the
lines it prints (a last line ``:4`` tells the shell not to fall back to file names).

Commands and flags complete from click alone; PVC and restore names are listed from the cluster (kr8s is imported
only then), using the -n/--context/--kubeconfig already typed.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..entry import NO_FILE_COMPLETION


def completions(args: list[str], incomplete: str) -> list[str]:
    from click.shell_completion import ShellComplete

    from . import cli

    comp = ShellComplete(cli, {}, "kubectl pvc-restore", "_KUBECTL_PVC_RESTORE_COMPLETE")
    return [item.value for item in comp.get_completions(args, incomplete)]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    incomplete = argv.pop() if argv else ""
    try:
        for value in completions(argv, incomplete):
            print(value)
    except Exception:  # completion must never print a traceback into the shell
        pass
    print(f":{NO_FILE_COMPLETION}")


def _options(ctx: click.Context) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    current: click.Context | None = ctx
    while current is not None:
        for key in ("namespace", "context", "kubeconfig"):
            if merged.get(key) is None and current.params.get(key) is not None:
                merged[key] = current.params[key]
        current = current.parent
    return merged


def _names(ctx: click.Context, incomplete: str, what: str) -> list[str]:
    import asyncio

    async def fetch() -> list[str]:
        from .. import kube as k
        from .. import locks

        opts = _options(ctx)
        kube = await k.Kube.connect(kubeconfig=opts.get("kubeconfig"), context=opts.get("context"),
                                    namespace=opts.get("namespace"), timeout=3.0)
        try:
            ns = opts.get("namespace") or kube.namespace
            if what == "pvcs":
                items = await kube.list(k.PVCS, ns, metadata_only=True)
            elif what == "locked-pvcs":
                items = await kube.list(k.CONFIGMAPS, ns, label_selector=f"{locks.LOCK_LABEL}=true")
                return [(i.get("data") or {}).get("pvc", "") for i in items]
            else:
                items = await kube.list(k.PVC_RESTORES, ns)
            return [i["metadata"]["name"] for i in items]
        finally:
            await kube.close()

    try:
        names = asyncio.run(fetch())
    except Exception:
        return []
    return sorted(n for n in names if n and n.startswith(incomplete))


def complete_pvcs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, "pvcs")


def complete_restores(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, "restores")


def complete_locked_pvcs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, "locked-pvcs")
