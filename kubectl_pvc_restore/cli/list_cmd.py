"""``kubectl pvc-restore list``."""

from __future__ import annotations

import click

from ..formatting import age, as_list, dump, table
from .common import Client, output_option, selector_text
from .common import command as async_command


def rows(items: list[dict], wide: bool, all_namespaces: bool) -> tuple[list[str], list[list]]:
    headers = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "PVC", "SELECTOR", "PHASE", "ERROR", "AGE"]
    if wide:
        headers += ["WORKLOADS", "SNAPSHOT", "MESSAGE"]
    out = []
    for item in sorted(items, key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["creationTimestamp"],
                                             i["metadata"]["name"])):
        meta, status = item["metadata"], item.get("status") or {}
        error = status.get("error") or ""
        row = ([meta["namespace"]] if all_namespaces else []) + [
            meta["name"], (item.get("spec") or {}).get("pvc"), selector_text(item.get("spec") or {}),
            status.get("phase") or "Pending", (error[:60] + "...") if len(error) > 63 else error,
            age(meta.get("creationTimestamp"))]
        if wide:
            owners = ",".join(f"{o['kind']}/{o['name']}={o['replicas']}" for o in status.get("pvcOwners") or [])
            row += [owners, status.get("restoredSnapshot") or "", (status.get("message") or "")[:80]]
        out.append(row)
    return headers, out


@click.command("list")
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-w", "--watch", is_flag=True, help="Keep listing as restores change.")
@output_option("wide", "json", "yaml", "name")
@async_command
async def command(client: Client, all_namespaces: bool, watch: bool, output: str | None) -> int:
    """List PVCRestores (alias: ls)."""
    import asyncio

    namespace = None if all_namespaces else client.namespace
    last = None
    while True:
        items = await client.restores(namespace)
        if output in ("json", "yaml"):
            text = dump(as_list(items), output)
        elif output == "name":
            text = "\n".join(f"pvcrestore/{i['metadata']['name']}" for i in items)
        elif not items:
            text = "No PVCRestores found" + ("." if all_namespaces else f" in namespace {namespace}.")
        else:
            text = table(*rows(items, output == "wide", all_namespaces))
        if text != last:
            if last is not None:
                click.echo("")
            click.echo(text)
            last = text
        if not watch:
            return 0
        await asyncio.sleep(1.0)
