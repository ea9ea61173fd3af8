"""Shared CLI plumbing: kubectl-style global flags, the client, output formats, and turning errors into messages."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Awaitable, Callable, Iterable

import click

# Nothing here imports the model, kr8s, asyncio or difflib at import time: `--help` and completion import this module
# (tests/test_cli_imports.py); each function imports what it needs.


@dataclasses.dataclass
class GlobalOptions:
    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    request_timeout: float = 15.0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> GlobalOptions:
        given: dict[str, Any] = {f.name: options[f.name] for f in dataclasses.fields(cls)
                                 if options.get(f.name) is not None}
        return cls(**given)

    def merged(self, options: dict[str, Any]) -> GlobalOptions:
        """Flags given after the command win over the ones given before it."""
        return dataclasses.replace(self, **{f.name: options[f.name] for f in dataclasses.fields(self)
                                            if options.get(f.name) is not None})


def _check_namespace(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """-n/--namespace: a usage error before anything is sent when it is not a DNS-1123 label (``../x``, ``''``)."""
    from ..names import InvalidName, check_namespace

    if value is not None:
        try:
            check_namespace(value, "")
        except InvalidName as exc:
            raise click.BadParameter(str(exc).lstrip(), ctx, param) from None
    return value


class KubeName(click.ParamType):
    """A Kubernetes object name (PVC, PVCRestore): refused with a usage error before anything is sent when it is not
    a DNS-1123 subdomain (``names.check_name``), so ``../pods`` or ``''`` cannot reach an API path."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..names import InvalidName, check_name

        try:
            return check_name(value, "")
        except InvalidName as exc:
            self.fail(str(exc).lstrip(), param, ctx)


KUBE_NAME = KubeName()

_GLOBAL = [
    click.option("-n", "--namespace", callback=_check_namespace, help="Namespace (default: the kubeconfig "
                 "context's)."),
    click.option("--context", help="Kubeconfig context to use."),
    click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file (default: $KUBECONFIG, "
                 "then ~/.kube/config)."),
    click.option("--request-timeout", type=click.FloatRange(min=0.5), help="Seconds to wait for each API call "
                 "(default 15)."),
]


def global_options(func: Callable) -> Callable:
    for option in reversed(_GLOBAL):
        func = option(func)
    return func


def output_option(*choices: str) -> Callable:
    return click.option("-o", "--output", type=click.Choice(list(choices)), help="Output format.")


def command(func: Callable[..., Awaitable[int | None]] | None = None, *,
            check: Callable[..., None] | None = None) -> Callable:
    """Make an async command body a click callback: global flags, one client, errors as messages (exit 1).

    ``@command(check=fn)``: ``fn(**options)`` runs first, before any connection, to refuse bad flag combinations
    with a usage error (exit 2).
    """
    if func is None:
        return functools.partial(command, check=check)

    @global_options
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, **options: Any) -> None:
        opts = (ctx.obj or GlobalOptions()).merged(options)
        for name in ("namespace", "context", "kubeconfig", "request_timeout"):
            options.pop(name, None)
        if check is not None:
            check(**options)
        ctx.exit(run_async(func, opts, options))

    return wrapper


def run_async(func: Callable[..., Awaitable[int | None]], opts: GlobalOptions, options: dict[str, Any]) -> int:
    import asyncio  # lazily, like kr8s: --help and completion never start an event loop

    return asyncio.run(_run(func, opts, options))


async def _run(func: Callable[..., Awaitable[int | None]], opts: GlobalOptions, options: dict[str, Any]) -> int:
    from .. import kube as k
    from ..kubeconfig import KubeconfigError

    client = None
    try:
        client = await connect(opts)
        return await func(Client(client, opts), **options) or 0
    except KubeconfigError as exc:
        raise click.ClickException(str(exc)) from None
    except k.Unreachable as exc:
        raise click.ClickException(f"{exc}\nIs the cluster running, and is your kubeconfig/--context right?") from None
    except (CRDMissing, k.KubeError) as exc:  # the messages name the verb, resource and fix already
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        from ..selector import SelectorError  # here: only commands that take a selector import the module

        if isinstance(exc, SelectorError):
            raise click.BadParameter(str(exc)) from None
        raise
    finally:
        if client is not None:
            await client.close()


async def connect(opts: GlobalOptions) -> Any:
    """The checked kubeconfig's client (``kube.Kube``), for the CLI and the TUI.

    The kubeconfig is checked first (``kubeconfig.check``: missing file, bad YAML, no or unknown context, a context
    without cluster, user or server); kr8s then gets exactly the files, context and namespace that were checked.
    Whatever else kr8s raises while loading credentials (it has no exception type of its own for them: KeyError,
    TypeError, ValueError, ServerError for a refused token, ...) becomes a KubeconfigError, so no traceback escapes;
    so do TLS problems (a server certificate the kubeconfig does not trust, certificates or a key ssl cannot load).
    ``kube.Unreachable`` (no answer) passes through.
    """
    import ssl

    from .. import kube as k
    from .. import kubeconfig

    resolved = kubeconfig.check(opts.kubeconfig, opts.context, namespace=opts.namespace)
    namespace = opts.namespace or resolved.namespace or (None if resolved.in_cluster else "default")
    source = resolved.describe() + (f" (context {resolved.context})" if resolved.context else "")
    try:
        return await k.Kube.connect(kubeconfig=resolved.kubeconfig, context=resolved.context or opts.context,
                                    namespace=namespace, timeout=opts.request_timeout)
    except k.Unreachable as exc:
        cause = exc.__cause__
        # TLS: the server's certificate is not signed by the kubeconfig's certificate authority (httpx wraps the
        # ssl error), or ssl could not load the kubeconfig's certificates or key (before connecting). Neither is a
        # server that cannot be reached.
        untrusted = cause
        while untrusted is not None and not isinstance(untrusted, ssl.SSLCertVerificationError):
            untrusted = untrusted.__cause__ or untrusted.__context__
        if isinstance(untrusted, ssl.SSLCertVerificationError):
            raise kubeconfig.KubeconfigError(
                f"the API server at {resolved.server} presented a certificate that {source} does not trust "
                f"({untrusted.verify_message}); check the cluster's certificate-authority in the kubeconfig, or get a "
                "fresh kubeconfig") from None
        if isinstance(cause, ssl.SSLError):
            problem = ("its client key does not belong to its client certificate"
                       if cause.reason == "KEY_VALUES_MISMATCH" else
                       "a client certificate, client key or certificate authority in it is not valid PEM")
            raise kubeconfig.KubeconfigError(f"cannot load the certificates of {source}: {problem}; fix the "
                                             "kubeconfig (regenerate it), or use another --context") from None
        if isinstance(cause, ValueError):  # kr8s: credentials it cannot use (Kube.connect says "cannot load")
            raise kubeconfig.KubeconfigError(f"{exc} ({resolved.describe()}); fix the kubeconfig or use another "
                                             "--context") from None
        raise
    except k.KubeError:
        raise
    except Exception as exc:  # noqa: BLE001 - kr8s has no exception type for credential problems
        import kr8s

        response = getattr(exc, "response", None)
        if isinstance(exc, kr8s.ServerError) and response is not None:
            if response.status_code in (401, 403):
                raise kubeconfig.KubeconfigError(
                    f"the API server at {resolved.server} refused the credentials of {source}: HTTP "
                    f"{response.status_code}; your token or certificate may have expired: get a fresh kubeconfig, "
                    "or use another --context") from None
            said = " ".join(response.text.split())[:200]  # its own words, not httpx's ("For more information ...")
            raise kubeconfig.KubeconfigError(
                f"the server at {resolved.server} ({source}) answered HTTP {response.status_code} when asked for "
                f"its version{f': {said}' if said else ''}; is it a Kubernetes API server?") from None
        raise kubeconfig.KubeconfigError(f"cannot load Kubernetes credentials from {source}: "
                                         f"{type(exc).__name__}: {exc}; fix the kubeconfig or use another --context") \
            from None


class CRDMissing(Exception):
    pass


INSTALL_COMMAND = "helm install pvc-restore charts/pvc-restore -n pvc-restore --create-namespace"
CRD_HINT = ("the PVCRestore CRD is not installed in this cluster; install pvc-restore with its Helm chart "
            f"(from a checkout of the project):\n  {INSTALL_COMMAND}")


class Client:
    """The CLI's view of the cluster: the shared Kube layer plus the lookups commands need."""

    def __init__(self, kube: Any, opts: GlobalOptions) -> None:
        self.kube = kube
        self.opts = opts

    @property
    def namespace(self) -> str:
        return self.opts.namespace or self.kube.namespace or "default"

    async def restores(self, namespace: str | None) -> list[dict[str, Any]]:
        from .. import kube as k

        try:
            return await self.kube.list(k.PVC_RESTORES, namespace)
        except k.NotFound:
            raise CRDMissing(CRD_HINT) from None

    async def restore(self, name: str) -> dict[str, Any]:
        from .. import kube as k

        try:
            return await self.kube.get(k.PVC_RESTORES, name, self.namespace)
        except k.NotFound:
            items = await self.restores(self.namespace)  # raises CRDMissing if that is the cause
            raise click.ClickException(f'PVCRestore "{name}" not found in namespace {self.namespace}'
                                       + suggest(name, [i["metadata"]["name"] for i in items])) from None

    async def pvc(self, name: str) -> dict[str, Any]:
        from .. import kube as k

        pvc = await self.kube.get_or_none(k.PVCS, name, self.namespace)
        if pvc is None:
            names = [p["metadata"]["name"] for p in await self.kube.list(k.PVCS, self.namespace, metadata_only=True)]
            raise click.ClickException(f'PersistentVolumeClaim "{name}" not found in namespace {self.namespace}'
                                       + suggest(name, names))
        return pvc


def suggest(name: str, candidates: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def selector_text(spec: dict[str, Any]) -> str:
    from .. import model

    return model.Spec.from_dict(spec or {}).describe_selector()


def print_progress(obj: dict[str, Any], last: tuple | None) -> tuple:
    """Print every phase the restore entered since ``last`` (from ``status.timeline``, with the time it was entered,
    so a phase shorter than a poll is not skipped) and the status message when it changes. Returns the new state."""
    import datetime as dt

    from ..model import parse_time, timeline

    status = obj.get("status") or {}
    printed, said = last or (0, None)
    entries = timeline(status)
    if not entries and status.get("phase"):  # a controller of an earlier version: no timeline, only the phase now
        entries = [(status["phase"], status.get("phaseStartTime") or "", None)]
        printed = 0 if said is None or said[0] != status["phase"] else 1
    message = status.get("message")
    for i, (phase, at, _) in enumerate(entries[printed:], start=printed):
        when = parse_time(at) if at else None
        stamp = (when.astimezone() if when else dt.datetime.now()).strftime("%H:%M:%S")
        current = i == len(entries) - 1
        click.echo(f"{stamp}  {phase:<10}  {(message or '') if current else ''}".rstrip())
        if current:
            said = (phase, message)
    if entries and said != (entries[-1][0], message) and message:
        click.echo(f"{'':8}  {'':<10}  {message}")
        said = (entries[-1][0], message)
    return (len(entries), said)


async def follow(client: Client, name: str, timeout: float | None) -> int:
    """Print phase changes until Finished; 0 on success, 1 with the error otherwise."""
    import asyncio
    import time

    last = None
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        obj = await client.restore(name)
        last = print_progress(obj, last)
        status = obj.get("status") or {}
        if status.get("phase") == "Finished":
            if status.get("error"):
                click.echo(f"Error: restore {name} failed: {status['error']}", err=True)
                return 1
            snapshot = status.get("restoredSnapshot")
            click.echo(f"restore {name} succeeded" + (f" (snapshot {snapshot})" if snapshot else ""))
            return 0
        if deadline and time.monotonic() > deadline:
            click.echo(f"Error: timed out waiting for {name} (phase {status.get('phase') or 'Pending'}); "
                       "it keeps running: kubectl pvc-restore watch " + name, err=True)
            return 1
        await asyncio.sleep(0.5)
