"""``kubectl pvc-restore locks`` and ``locks clear PVC``."""

from __future__ import annotations

import click

from ..formatting import age, as_list, dump, table
from .common import KUBE_NAME, Client, GlobalOptions, global_options, output_option
from .common import command as async_command
from .complete import complete_locked_pvcs


class LocksGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0].startswith("-") and args[0] not in ("-h", "--help"):
            args = ["list", *args]  # bare `locks` lists
        return super().parse_args(ctx, args)


@click.group("locks", cls=LocksGroup, invoke_without_command=False)
@global_options
@click.pass_context
def command(ctx: click.Context, **options) -> None:
    """List restore locks (one ConfigMap pvc-restore-lock-<pvc> per PVC being restored), or clear a stale one."""
    ctx.obj = (ctx.obj or GlobalOptions()).merged(options)


@command.command("list")
@click.option("-A", "--all-namespaces", is_flag=True, help="Across all namespaces.")
@output_option("json", "yaml")
@async_command
async def list_locks(client: Client, all_namespaces: bool, output: str | None) -> int:
    """List locks with their holder, age, and whether the holder is alive."""
    from .. import kube as k
    from .. import locks

    namespace = None if all_namespaces else client.namespace
    if output:
        items = await client.kube.list(k.CONFIGMAPS, namespace, label_selector=f"{locks.LOCK_LABEL}=true")
        click.echo(dump(as_list(items), output))
        return 0
    infos = await locks.list_locks(client.kube, namespace)
    if not infos:
        click.echo("No restore locks" + ("." if all_namespaces else f" in namespace {namespace}."))
        return 0
    rows = [([info.namespace] if all_namespaces else []) + [info.pvc, info.name, info.holder, info.holder_state,
                                                             age(info.created)] for info in infos]
    headers = (["NAMESPACE"] if all_namespaces else []) + ["PVC", "LOCK", "HOLDER", "HOLDER STATE", "AGE"]
    click.echo(table(headers, rows))
    return 0


@command.command("clear")
@click.argument("pvc", type=KUBE_NAME, shell_complete=complete_locked_pvcs)
@click.option("--force", is_flag=True, help="Also clear a lock whose holder restore is still active (unsafe: two "
              "restores could then run at once).")
@async_command
async def clear(client: Client, pvc: str, force: bool) -> int:
    """Delete the lock of PVC. Refuses while the holder restore is active, unless --force."""
    from .. import locks

    try:
        info = await locks.clear_lock(client.kube, client.namespace, pvc, force=force)
    except locks.NoLock as exc:
        raise click.ClickException(str(exc)) from None
    except locks.LiveLock as exc:
        raise click.ClickException(f"{exc}, or use --force if it is really stuck.") from None
    click.echo(f"lock {info.name} cleared (holder {info.holder}, {info.holder_state})")
    return 0
