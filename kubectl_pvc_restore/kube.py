"""The one place that talks to the Kubernetes API.

Everything goes through ``Kube``: a thin async layer over kr8s's authenticated HTTP session that speaks plain JSON
dicts, sets HTTP timeouts (kr8s sets none), asks for metadata-only lists where that is enough, uses the ``/scale``
subresource, guards writes with resourceVersion preconditions, and turns API failures into a few exception types
that carry a message fit for a user. kr8s is imported lazily so that CLI start-up stays fast.

Credentials that change while the process runs (a projected ServiceAccount token the kubelet rewrites, a kubeconfig
``tokenFile``, an exec plugin's short-lived token or certificate) are loaded again when the API server answers 401,
and the request is sent once more: see ``Kube.request``. kr8s alone does not cover this: it reauthenticates only
inside ``raise_for_status=True`` calls (never used here), it ignores ``tokenFile`` altogether, and it replaces its
HTTP session under requests still in flight.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import dataclasses
import functools
import json
import logging
import os
import re
import time
from typing import Any, AsyncIterator, Callable

from . import model, names

DEFAULT_TIMEOUT = 15.0
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#: The same for one object and for watch events: PartialObjectMetadata.
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: After a 401 that fresh credentials did not cure (they were the same), credentials are not loaded again for this
#: long: a burst of 401s must not become a burst of exec-plugin runs.
REAUTH_MIN_INTERVAL = 1.0
#: The requests ``Kube.write_guard`` is asked about.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Counts the changes made in this context, when set to a one-item list: the controller sets it for each reconcile,
#: to tell a reconcile that failed after changing something (progress: try again soon) from one that changed nothing
#: (back off). Counted: every creation and deletion the API server accepted (Events aside), and what ``progress()``
#: reports (an update made because something differed: an update sent on every attempt, changed or not, is not).
WRITES_ACCEPTED: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("writes_accepted", default=None)
#: Requests that always change something when accepted.
CHANGING_METHODS = frozenset({"POST", "DELETE"})


def progress() -> None:
    """Count a change made in this context (``WRITES_ACCEPTED``)."""
    accepted = WRITES_ACCEPTED.get()
    if accepted is not None:
        accepted[0] += 1


#: httpcore's trace events right before a request's bytes go onto the connection (HTTP/1.1 and HTTP/2).
GUARDED_TRACE_EVENTS = frozenset({"http11.send_request_headers.started", "http11.send_request_body.started",
                                  "http2.send_request_headers.started", "http2.send_request_body.started"})
#: Answers that say "not now" rather than "no": an overloaded or restarting API server (or a proxy before it).
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
#: A request that failed transiently is sent again at most this many times (as client-go's REST client does: reads
#: after a 5xx or a broken connection, any request after 429, which the server did not process), after a short wait:
#: a poll or a phase should not fail, and back off, for one lost packet.
TRANSIENT_RETRIES = 2
TRANSIENT_DELAY = 0.2
#: The longest Retry-After honoured (seconds); longer ones give up and leave the retry to the next poll.
RETRY_AFTER_MAX = 5.0
log = logging.getLogger("pvc-restore.kube")


class KubeError(Exception):
    """An API call failed; ``str()`` is a message for the user."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        #: The server's Retry-After (seconds), with a 429 or 503.
        self.retry_after = retry_after


class NotFound(KubeError):
    pass


class Gone(KubeError):
    """410: a watch's resourceVersion is older than the API server keeps history for; list again."""


class Conflict(KubeError):
    """The object changed since it was read (resourceVersion or UID precondition failed)."""


class AlreadyExists(KubeError):
    pass


class Forbidden(KubeError):
    pass


class Invalid(KubeError):
    """The API server rejected the object (schema, CEL rule or admission)."""


class Unreachable(KubeError):
    """The API server could not be reached, or did not answer in time."""


class BadName(Invalid):
    """A name, namespace or API version that is not valid in an API path; refused before any request is made."""


_API_VERSION = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+([a-z]+[0-9]+)?")
_PLURAL = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
#: The only subresources the project uses.
SUBRESOURCES = frozenset({"scale", "status", "token", "log"})


def check_api_version(api_version: object) -> str:
    if not isinstance(api_version, str) or not _API_VERSION.fullmatch(api_version):
        raise BadName(f"{api_version!r} is not a valid Kubernetes apiVersion")
    return api_version


@dataclasses.dataclass(frozen=True)
class Resource:
    api_version: str  # "v1" for the core group, otherwise "group/version"
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0] if "/" in self.api_version else ""

    def url(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The API path. Every segment is validated first (``names``): no name can escape its path."""
        check_api_version(self.api_version)
        if not _PLURAL.fullmatch(self.plural):
            raise BadName(f"{self.plural!r} is not a valid resource name")
        if namespace is not None and names.label_problem(namespace):
            raise BadName(str(_name_error(names.check_namespace, namespace)))
        if name is not None and names.subdomain_problem(name):
            raise BadName(str(_name_error(names.check_name, name, f"{self.kind} name")))
        if sub is not None and sub not in SUBRESOURCES:
            raise BadName(f"{sub!r} is not a subresource this tool uses")
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [base]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)


PODS = Resource("v1", "Pod", "pods")
PVCS = Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
PVS = Resource("v1", "PersistentVolume", "persistentvolumes", namespaced=False)
CONFIGMAPS = Resource("v1", "ConfigMap", "configmaps")
SECRETS = Resource("v1", "Secret", "secrets")
EVENTS = Resource("v1", "Event", "events")
NAMESPACES = Resource("v1", "Namespace", "namespaces", namespaced=False)
REPLICATION_CONTROLLERS = Resource("v1", "ReplicationController", "replicationcontrollers")
DEPLOYMENTS = Resource("apps/v1", "Deployment", "deployments")
REPLICASETS = Resource("apps/v1", "ReplicaSet", "replicasets")
STATEFULSETS = Resource("apps/v1", "StatefulSet", "statefulsets")
DAEMONSETS = Resource("apps/v1", "DaemonSet", "daemonsets")
JOBS = Resource("batch/v1", "Job", "jobs")
CRONJOBS = Resource("batch/v1", "CronJob", "cronjobs")
HPAS = Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
LEASES = Resource("coordination.k8s.io/v1", "Lease", "leases")
CRDS = Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False)
PVC_RESTORES = Resource(model.API_VERSION, model.KIND, model.PLURAL)
REPLICATION_SOURCES = Resource("volsync.backube/v1alpha1", "ReplicationSource", "replicationsources")
REPLICATION_DESTINATIONS = Resource("volsync.backube/v1alpha1", "ReplicationDestination", "replicationdestinations")

def _name_error(check: Any, *args: Any) -> Exception:
    try:
        check(*args)
    except names.InvalidName as exc:
        return exc
    return ValueError(args[0])


KNOWN = {(r.api_version, r.kind): r for r in (
    PODS, PVCS, PVS, CONFIGMAPS, SECRETS, EVENTS, NAMESPACES, REPLICATION_CONTROLLERS, DEPLOYMENTS, REPLICASETS, HPAS,
    STATEFULSETS, DAEMONSETS, JOBS, CRONJOBS, LEASES, CRDS, PVC_RESTORES, REPLICATION_SOURCES,
    REPLICATION_DESTINATIONS)}


def _error_from_response(response: Any, what: str) -> KubeError:
    code = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = body.get("reason")
    message = body.get("message") or response.text or f"HTTP {code}"
    if code == 404:
        return NotFound(f"{what}: not found", code=code, reason=reason)
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(f"{what}: already exists", code=code, reason=reason)
    if code == 409:
        return Conflict(f"{what}: {message}", code=code, reason=reason)
    if code in (401, 403):
        return Forbidden(f"{what}: permission denied: {message}", code=code, reason=reason)
    if code == 422 or code == 400:
        return Invalid(f"{what}: {message}", code=code, reason=reason)
    retry_after = None
    try:
        retry_after = float(response.headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        pass
    return KubeError(f"{what}: {message}", code=code, reason=reason, retry_after=retry_after)


def _transient_wait(error: KubeError, method: str, retry: int, resend_safe: bool = False) -> float | None:
    """Seconds to wait before sending a request again after ``error`` (its ``retry``-th retry), or None when it
    must not be sent again: a write after a 5xx or a broken connection may have been applied, and only a write that
    is ``resend_safe`` (applying it twice is applying it once, or the second copy is refused) may then go again."""
    if retry > TRANSIENT_RETRIES:
        return None
    if error.code == 429:
        after = error.retry_after if error.retry_after is not None else TRANSIENT_DELAY
        return after if after <= RETRY_AFTER_MAX else None
    if method != "GET" and not resend_safe:
        import httpx

        # Not sent at all (no connection): safe for a write too.
        return TRANSIENT_DELAY if isinstance(error.__cause__, httpx.ConnectError) else None
    if isinstance(error, Unreachable) or error.code in TRANSIENT_CODES:
        return TRANSIENT_DELAY * 2 ** (retry - 1)
    return None


def _file_bytes(path: Any) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _token_from_file(auth: Any) -> str | None:
    """The token in the ``tokenFile`` of the kubeconfig user kr8s loaded (kr8s ignores the field; kubectl reads it).
    As in client-go: ``token`` wins when both are set, and a relative path is relative to the kubeconfig file that
    defines the user. ValueError when the file cannot be read."""
    user = getattr(auth, "_user", None) or {}
    path = user.get("tokenFile")
    if not path or user.get("token"):
        return None
    name = (getattr(auth, "_context", None) or {}).get("user")
    if not isinstance(path, str):
        raise ValueError(f"the tokenFile of kubeconfig user {name!r} must be a path")
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        defined_in = None
        for config in getattr(getattr(auth, "kubeconfig", None), "_configs", []):  # the last definition wins
            if any(u.get("name") == name for u in (config.raw or {}).get("users") or []):
                defined_in = getattr(config, "path", None)
        if defined_in:
            path = os.path.join(os.path.dirname(str(defined_in)), path)
    try:
        with open(path) as f:
            token = f.read().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the tokenFile {path} of kubeconfig user {name!r}: {exc}") from None
    return token or None


def _data_copies(auth: Any) -> set[str]:
    """The temporary files kr8s wrote for ``auth`` from a kubeconfig's (or an exec plugin's) ``*-data`` fields, which
    nobody else removes; files the kubeconfig names itself are not among them."""
    user, cluster = getattr(auth, "_user", None) or {}, getattr(auth, "_cluster", None) or {}
    copies = (("client-certificate-data", user, "client_cert_file"), ("client-key-data", user, "client_key_file"),
              ("certificate-authority-data", cluster, "server_ca_file"))
    return {path for field, section, attr in copies if field in section and (path := getattr(auth, attr, None))}


def _unlink(paths: Any) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def _remove_unused_copies(fresh: Any, live: Any) -> None:
    """kr8s writes ``*-data`` certificates and keys of a kubeconfig to new temporary files on every load: remove those
    of a reload that the live client did not take (a private key must not pile up in /tmp at every 401)."""
    in_use = {getattr(live, attr, None) for attr in ("client_cert_file", "client_key_file", "server_ca_file")}
    _unlink(_data_copies(fresh) - in_use)


def _skip_httpx_cli() -> None:
    """httpx's ``__init__`` imports its command-line tool (``httpx._main``: rich, pygments and click), about a third of
    ``import httpx``, which nothing here uses (encode/httpx#3523). Unless httpx is already imported, stand in a module
    whose ``main`` loads the real one when called, so a CLI command does not pay for it. Call before importing
    httpx or kr8s."""
    import sys

    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    import types

    stub = types.ModuleType("httpx._main", "Stand-in for httpx's command-line tool, loaded when called.")

    def main(*args: Any, **kwargs: Any) -> Any:
        import importlib

        del sys.modules["httpx._main"]
        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stub.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stub


@functools.cache
def _slim_list_decoder(keep: tuple[str, ...]) -> Callable[[bytes], Any]:
    """A msgspec decoder of a (PartialObjectMetadata) list that keeps only ``keep`` of each item's metadata; a field
    absent from an object stays absent (UNSET, dropped by ``to_builtins``)."""
    import msgspec

    meta = msgspec.defstruct("Meta", [(name, Any, msgspec.UNSET) for name in keep])
    item = msgspec.defstruct("Item", [("metadata", meta, msgspec.field(default_factory=meta))])
    list_meta = msgspec.defstruct("ListMeta", [("resourceVersion", str, ""),
                                               ("continue_", str, msgspec.field(default="", name="continue"))])
    # An empty list comes as "items": null (the API server's Go encoding of an empty slice).
    page = msgspec.defstruct("Page", [("items", list[item] | None, None),  # type: ignore[valid-type]
                                      ("metadata", list_meta, msgspec.field(default_factory=list_meta))])
    return msgspec.json.Decoder(page).decode


class Kube:
    """Async access to one cluster. Create with ``await Kube.connect(...)``."""

    def __init__(self, api: Any, *, namespace: str | None = None) -> None:
        self.api = api
        self.namespace = namespace or getattr(api, "namespace", None) or "default"
        self._discovered: dict[tuple[str, str], tuple[Resource | None, bool]] = {}
        #: Called after every request with (method, HTTP status or None when there was no answer); the controller
        #: counts API errors and tracks connectivity with it.
        self.observer: Any = None
        # Credentials reloads after a 401 (``_reauthenticate``): one at a time; the generation counts the changes,
        # so that requests refused with the old credentials just retry with the ones another request loaded.
        self._auth_lock = asyncio.Lock()
        self._auth_generation = 0
        self._auth_unchanged_at = float("-inf")
        #: The client certificate and key the session was made with, as bytes: a kubeconfig that names its files may
        #: have them rewritten in place, and comparing the files with themselves would never notice.
        auth = getattr(api, "auth", None)
        self._cert_bytes = (_file_bytes(getattr(auth, "client_cert_file", None)),
                            _file_bytes(getattr(auth, "client_key_file", None)))
        #: HTTP clients replaced (a new session, a new watch client), closed once their requests must have ended.
        self._retired_sessions: set[Any] = set()
        #: The longest a watch sent so far may last (its read timeout): a retired watch client waits that long.
        self._watch_span = 0.0
        self._closing: set[asyncio.Task] = set()
        #: The timers that will close retired clients (``close`` closes them at once and cancels these).
        self._retire_timers: set[asyncio.TimerHandle] = set()
        #: Set by ``close``: a client made or retired afterwards (by a request that was waiting) is closed at once.
        self._closed = False
        #: Sent with every request (a new session after a certificate rotation keeps it).
        self.user_agent: str | None = None
        #: ``list_shared``: the list callers now wait for (not sent yet), and the one being sent, per resource and
        #: namespace.
        self._shared_lists: dict[tuple[str, str, str], asyncio.Task] = {}
        self._sent_lists: dict[tuple[str, str, str], asyncio.Task] = {}
        #: Watches get an HTTP client of their own (``_watch_client``), made for the session in use.
        self._watch_session: Any = None
        self._watch_session_for: Any = None
        #: ``write_guard(url, what)`` raises to refuse a write (POST, PUT, PATCH, DELETE). It is asked before the
        #: request starts, and again by httpcore right before the request's headers and its body go onto the
        #: connection, after any wait for a connection: a process paused in between (SIGSTOP, a frozen VM) is
        #: asked again on waking, and a request refused after its headers went out is cut off before its body,
        #: so the API server never acts on it. The controller's leader election sets it (leader.py).
        self.write_guard: Callable[[str, str], None] | None = None

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str | None = None,
    ) -> Kube:
        """``user_agent`` names this client in the API server's audit log (as kubectl's does): by default
        ``kubectl-pvc_restore/VERSION``; the controller adds its identity."""
        _skip_httpx_cli()
        import httpx
        import kr8s
        import kr8s.asyncio

        from . import __version__

        agent = user_agent or f"kubectl-pvc_restore/{__version__}"

        async def open_api() -> Any:
            # A client of our own (not kr8s.api()'s per-thread cache, which hands back an existing client whose
            # session keeps the credentials it was created with).
            api = kr8s.asyncio.Api(bypass_factory=True, kubeconfig=kubeconfig, context=context, namespace=namespace)
            await api.auth  # kr8s loads the kubeconfig (running an exec plugin) or the in-cluster service account
            token = _token_from_file(api.auth)  # kr8s ignores a kubeconfig user's tokenFile
            if token:
                api.auth.token = token
            await api._create_session()
            assert api._session is not None
            api._session.headers["User-Agent"] = agent
            await api.version()  # reach the server now: a wrong address fails here, not on the first call
            return api

        try:
            # kr8s asks the server for /version while connecting, before a timeout can be set on its session.
            api = await asyncio.wait_for(open_api(), timeout)
        except asyncio.TimeoutError as exc:
            raise Unreachable(f"cannot reach the Kubernetes API server: no answer within {timeout:g}s") from exc
        except (httpx.TransportError, kr8s.APITimeoutError, OSError) as exc:
            raise Unreachable(f"cannot reach the Kubernetes API server: {exc or type(exc).__name__}") from exc
        except ValueError as exc:  # kr8s: no kubeconfig / no such context; an unreadable tokenFile
            raise Unreachable(f"cannot load Kubernetes credentials: {exc}") from exc
        api.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        kube = cls(api, namespace=namespace)
        kube.user_agent = agent
        return kube

    @property
    def server(self) -> str:
        return str(self.api.auth.server)

    # -- raw requests -------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str | None = None,
        text: bool = False,
        raw: bool = False,
        resend_safe: bool = False,
    ) -> Any:
        """The decoded JSON response (``text=True``: the body as text; ``raw=True``: as bytes). Reads are sent again
        after a transient error (5xx, a broken connection), writes only when ``resend_safe``: a JSON merge patch
        (applied twice, it gives what it gave once, unless someone changed the same fields in between: the copy writes
        over that, as the caller's next attempt would) or a PUT that carries ``metadata.resourceVersion`` (a second
        copy of one already applied is refused with 409 Conflict). Creations, deletions and JSON patches are not."""

        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["content"] = json.dumps(body)
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        retry = 0
        while True:
            try:
                return await self._request_once(method, url, what=what, kwargs=kwargs, text=text, raw=raw)
            except KubeError as error:
                retry += 1
                wait = _transient_wait(error, method, retry, resend_safe)
                if wait is None:
                    raise
                log.debug("%s: %s; sending it again in %.1fs", what, error, wait)
                await asyncio.sleep(wait)

    async def _request_once(self, method: str, url: str, *, what: str, kwargs: dict[str, Any], text: bool,
                            raw: bool = False) -> Any:
        import httpx
        import kr8s

        # kr8s joins base and url with "/": give it the path up to the last segment as the base.
        head, _, tail = url.rpartition("/")
        guard = self.write_guard if method in WRITE_METHODS else None
        if guard is not None:
            guard(url, what)

            async def trace(event: str, info: dict[str, Any]) -> None:
                if event in GUARDED_TRACE_EVENTS:
                    guard(url, what)

            # (kr8s replaces the extensions when the kubeconfig sets tls-server-name: then only the check above.)
            kwargs = {**kwargs, "extensions": {"trace": trace}}
        for attempt in (1, 2):
            generation = self._auth_generation
            try:
                async with self.api.call_api(method, version="", base=head, url=tail, raise_for_status=False,
                                             **kwargs) as response:
                    if self.observer:
                        self.observer(method, response.status_code)
                    if not response.is_error:
                        if method in CHANGING_METHODS:
                            progress()
                        if raw:
                            return response.content
                        if text:
                            return response.text
                        try:
                            return response.json() if response.content else None
                        except ValueError:  # e.g. a proxy's login page: not the API server's answer
                            raise KubeError(f"{what}: the answer (HTTP {response.status_code}, "
                                            f"{response.headers.get('content-type') or 'no content type'}) is not "
                                            f"JSON; is {self.server} a Kubernetes API server?") from None
                    error = _error_from_response(response, what)
            except kr8s.ServerError as exc:  # only with raise_for_status=True (kr8s's own 401/403 retries)
                response = exc.response
                assert response is not None  # kr8s raises ServerError with the response it refused
                if self.observer:
                    self.observer(method, response.status_code)
                raise _error_from_response(response, what) from exc
            except (httpx.RequestError, kr8s.APITimeoutError) as exc:  # RequestError: TransportError and the rest
                if self.observer:
                    self.observer(method, None)
                raise Unreachable(f"{what}: cannot reach the Kubernetes API server at {self.server}: "
                                  f"{exc or type(exc).__name__}") from exc
            # 401: the credentials are no longer valid (an expired or rotated token). Load them again from where
            # they came from and send the request once more; a second 401, or credentials that did not change,
            # is the error. (403 is authorization: other credentials would not change it.)
            if error.code != 401 or attempt == 2 or not await self._reauthenticate(generation):
                raise error
            log.info("%s: the API server refused the credentials (401); retrying with reloaded credentials", what)
        raise AssertionError("unreachable")

    async def _reauthenticate(self, used: int) -> bool:
        """After a 401 to a request sent with credentials generation ``used``: True when it should be sent again
        (the credentials changed, in this call or meanwhile in another request's)."""
        async with self._auth_lock:
            if self._auth_generation != used:
                return True
            if time.monotonic() - self._auth_unchanged_at < REAUTH_MIN_INTERVAL:
                return False
            try:
                changed = await self._reload_credentials()
            except Exception as exc:  # noqa: BLE001 - kr8s has no exception type for credential problems
                log.warning("cannot reload the Kubernetes credentials after a 401: %s: %s", type(exc).__name__, exc)
                changed = False
            if changed:
                self._auth_generation += 1
                log.info("Kubernetes credentials reloaded")
            else:
                self._auth_unchanged_at = time.monotonic()
            return changed

    async def _reload_credentials(self) -> bool:
        """Load the credentials again, as kr8s loaded them at the start (a fresh ``KubeAuth`` with the same kubeconfig,
        context and service account: in-cluster it reads the token file again; from a kubeconfig it reads the file
        again and runs its exec plugin again), plus the kubeconfig user's ``tokenFile``, which kr8s ignores. The live
        client takes the new token (the session's header: requests in flight are not disturbed) or, for a new client
        certificate, a new session. False when nothing changed."""
        from kr8s._auth import KubeAuth

        api = self.api
        auth = api.auth
        fresh = KubeAuth(url=getattr(api, "_url", None), kubeconfig=getattr(api, "_kubeconfig", None),
                         serviceaccount=getattr(api, "_serviceaccount", None),
                         namespace=getattr(auth, "_namespace", None), context=getattr(auth, "_use_context", None))
        try:
            await asyncio.wait_for(fresh.reauthenticate(), self._timeout())
            token = _token_from_file(fresh) or fresh.token
            certs = (_file_bytes(fresh.client_cert_file), _file_bytes(fresh.client_key_file))
            certs_changed = any(certs) and certs != self._cert_bytes
            token_changed = bool(token) and token != auth.token
            if not (token_changed or certs_changed):
                return False
            if certs_changed:
                copies = _data_copies(auth)  # kr8s's temporary copies among the files in use
                before = auth.client_cert_file, auth.client_key_file, auth.token
                auth.client_cert_file, auth.client_key_file = fresh.client_cert_file, fresh.client_key_file
                if token_changed:
                    auth.token = token
                try:
                    await self._replace_session()
                except BaseException:  # all of it stays as it was: what the session in use sends
                    auth.client_cert_file, auth.client_key_file, auth.token = before
                    raise
                # The old certificate and key are in no session any more (a session loads them once, when made):
                # kr8s's copies of them go. The live credentials now come from what was loaded again (its user
                # section says which of their files are copies, at the next rotation).
                self._cert_bytes = certs
                auth._user = fresh._user
                _unlink({path for path in before[:2] if path in copies}
                        - {fresh.client_cert_file, fresh.client_key_file})  # (the same files, rewritten in place)
                return True
            auth.token = token
            if api._session is not None:
                api._session.headers["Authorization"] = f"Bearer {token}"
            return True
        finally:
            _remove_unused_copies(fresh, auth)

    def _timeout(self) -> float:
        timeout = getattr(self.api, "timeout", None)
        return float(getattr(timeout, "read", None) or DEFAULT_TIMEOUT)

    async def _replace_session(self) -> None:
        """A new session (a new TLS client certificate), made as kr8s's ``_create_session`` makes one, with the
        headers of the one in use, and put in its place in one step: a request started meanwhile goes out on the old
        one, never on none (kr8s's own leaves none while it loads the certificate, so a concurrent request would make a
        session of its own, and it closes the old one at once). The old one is closed once requests in flight on it
        must have ended (they are bounded by the timeout)."""
        import httpx

        api, auth = self.api, self.api.auth
        old = api._session
        if old is None:
            await api._create_session()
            return
        headers = {key: value for key, value in old.headers.items() if key.lower() != "authorization"}
        if auth.token:
            headers["Authorization"] = f"Bearer {auth.token}"
        new = httpx.AsyncClient(base_url=auth.server, headers=headers, verify=await auth.ssl_context(),
                                timeout=old.timeout, follow_redirects=True, proxy=getattr(auth, "proxy", None))
        if self._closed:  # closed while the certificate loaded
            await new.aclose()
            return
        api._session = new
        self._retire(old)

    async def version(self) -> dict[str, Any]:
        """The API server's /version, through ``request`` (kr8s's own ``version`` raises its and httpx's exceptions,
        not KubeError, and is not sent again after a 5xx)."""
        info = await self.request("GET", "/version/", what="the API server's version")
        if not isinstance(info, dict):
            raise KubeError(f"the API server's version: the answer is not an object: {str(info)[:200]!r}")
        return info

    # -- typed helpers ------------------------------------------------------------------------------------------

    @staticmethod
    def _what(res: Resource, name: str | None, namespace: str | None) -> str:
        target = f"{res.kind} {name}" if name else f"list {res.plural}"
        return f"{target} in namespace {namespace}" if namespace and res.namespaced else target

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        return await self.request("GET", res.url(namespace, name), what=self._what(res, name, namespace))

    async def get_metadata(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object's metadata only (PartialObjectMetadata), or None when it does not exist."""
        try:
            return await self.request("GET", res.url(namespace, name), what=self._what(res, name, namespace),
                                      accept=METADATA_WATCH)
        except NotFound:
            return None

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return await self.get(res, name, namespace)
        except NotFound:
            return None

    async def pod_log(self, name: str, namespace: str, *, container: str | None = None,
                      tail_lines: int | None = None, limit_bytes: int | None = None) -> str:
        """A container's log (``pods/log``): its last ``tail_lines`` lines, or its first ``limit_bytes`` bytes."""
        return await self.request("GET", PODS.url(namespace, name, "log"), what=f"the log of pod {namespace}/{name}",
                                  params={"container": container, "tailLines": tail_lines,
                                          "limitBytes": limit_bytes}, text=True)

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """All items (following ``continue``); ``namespace=None`` lists across namespaces."""
        items, _ = await self.list_versioned(res, namespace, label_selector=label_selector,
                                             field_selector=field_selector, metadata_only=metadata_only, limit=limit)
        return items

    async def list_versioned(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                             field_selector: str | None = None, metadata_only: bool = False, limit: int | None = 500
                             ) -> tuple[builtins.list[dict[str, Any]], str]:
        """All items and the resourceVersion of the list (the point a watch continues from). A list read in pages
        is one consistent snapshot: every page is served at the first page's resourceVersion."""
        def read(body: bytes) -> tuple[builtins.list[dict[str, Any]], str, str]:
            page = json.loads(body) if body else {}
            meta = page.get("metadata") or {}
            return page.get("items") or [], meta.get("resourceVersion") or "", meta.get("continue") or ""

        return await self._list_pages(res, namespace, read, accept=METADATA_LIST if metadata_only else None,
                                      params={"labelSelector": label_selector, "fieldSelector": field_selector,
                                              "limit": limit})

    async def list_metadata(self, res: Resource, namespace: str | None, *, keep: tuple[str, ...],
                            limit: int | None = 500) -> tuple[builtins.list[dict[str, Any]], str]:
        """A metadata-only list (as ``list_versioned``) of which only ``keep`` of each object's metadata is decoded:
        msgspec skips the rest (managedFields above all, most of the bytes) without building it, several times
        faster than decoding everything and with a fraction of the memory. Each item is ``{"metadata": {...}}``."""
        import msgspec

        decode = _slim_list_decoder(keep)

        def read(body: bytes) -> tuple[builtins.list[dict[str, Any]], str, str]:
            page = decode(body)
            return msgspec.to_builtins(page.items or []), page.metadata.resourceVersion, page.metadata.continue_

        return await self._list_pages(res, namespace, read, accept=METADATA_LIST, params={"limit": limit})

    async def _list_pages(self, res: Resource, namespace: str | None,
                          read: Callable[[bytes], tuple[builtins.list[dict[str, Any]], str, str]], *,
                          accept: str | None, params: dict[str, Any]) -> tuple[builtins.list[dict[str, Any]], str]:
        """Every page of a list, each answer decoded by ``read`` into (items, resourceVersion, continue token); the
        list's resourceVersion is the first page's."""
        import msgspec

        what = self._what(res, None, namespace)
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        version = ""
        while True:
            body = await self.request("GET", res.url(namespace), what=what, params={**params, "continue": token},
                                      accept=accept, raw=True)
            try:
                page_items, page_version, token = read(body)
            except (ValueError, AttributeError, msgspec.DecodeError) as exc:  # not JSON, or not the shape of a list
                raise KubeError(f"{what}: an answer that is not a list: {exc}") from exc
            items.extend(page_items)
            version = version or page_version
            if not token:
                return items, version

    async def list_shared(self, res: Resource, namespace: str) -> tuple[builtins.list[dict[str, Any]], str]:
        """``list_versioned`` of a whole namespace, shared by the callers that ask at the same time: each gets a list
        whose request was sent after it asked (so it sees everything written before it asked), but callers that ask
        while one is being sent share the next one. Many restores in one namespace looking at its pods at once make
        one list, not one each. Callers must not change what they get."""
        key = (res.plural, res.api_version, namespace)
        shared = self._shared_lists.get(key)
        if shared is None or shared.get_loop() is not asyncio.get_running_loop():
            shared = self._shared_lists[key] = asyncio.get_running_loop().create_task(
                self._send_shared_list(key, res, namespace))
            shared.add_done_callback(lambda task: task.cancelled() or task.exception())  # retrieved by any caller
        return await asyncio.shield(shared)

    async def _send_shared_list(self, key: tuple[str, str, str], res: Resource, namespace: str
                                ) -> tuple[builtins.list[dict[str, Any]], str]:
        sent = self._sent_lists.get(key)
        if sent is not None and sent.get_loop() is asyncio.get_running_loop():
            # Sent before the callers of this one asked: wait for it, then send ours.
            await asyncio.wait([sent])
        mine = self._shared_lists.pop(key)  # from now on, callers wait for the next one
        assert mine is asyncio.current_task()
        self._sent_lists[key] = mine
        try:
            return await self.list_versioned(res, namespace)
        finally:
            if self._sent_lists.get(key) is mine:
                del self._sent_lists[key]

    async def watch(self, res: Resource, namespace: str | None, resource_version: str, *,
                    label_selector: str | None = None, field_selector: str | None = None,
                    metadata_only: bool = False, timeout_seconds: int = 60
                    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The changes since ``resource_version``, as ``(type, object)``: ADDED, MODIFIED, DELETED and BOOKMARK
        (only its resourceVersion is meaningful), for at most ``timeout_seconds`` (the API server ends the watch
        then; the caller may stop reading sooner). Raises Gone when that resourceVersion is too old (410): list again.
        """
        import httpx

        params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds), "labelSelector": label_selector,
                  "fieldSelector": field_selector}
        what = f"watch {self._what(res, None, namespace)}"
        self._watch_span = max(self._watch_span, timeout_seconds + self._timeout())
        session = self.api._session
        if session is None:  # replaced this moment (a new client certificate): the caller lists again
            raise Unreachable(f"{what}: the connection to the API server is being renewed")
        generation = self._auth_generation
        try:
            client = await self._watch_client(session)
            # The session's headers as they are now: its credentials (reloaded after a 401) and User-Agent.
            headers = {**session.headers, "Accept": METADATA_WATCH if metadata_only else "application/json"}
            async with client.stream("GET", res.url(namespace), headers=headers,
                                     params={k: v for k, v in params.items() if v is not None},
                                     timeout=httpx.Timeout(self._timeout(), read=timeout_seconds + self._timeout())
                                     ) as response:
                if self.observer:
                    self.observer("WATCH", response.status_code)
                if response.is_error:
                    await response.aread()
                    error = _error_from_response(response, what)
                    # 401: expired or rotated credentials, as in ``request``: load them again; the caller's next
                    # watch or list goes out with them.
                    if response.status_code == 401 and await self._reauthenticate(generation):
                        raise KubeError(f"{what}: the API server refused the credentials (401); they were loaded "
                                        "again", code=401)
                    raise error
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        event = None
                    kind, obj = ((event.get("type"), event.get("object") or {}) if isinstance(event, dict)
                                 else (None, None))
                    if not isinstance(kind, str) or not isinstance(obj, dict):  # the stream cannot be trusted further
                        raise KubeError(f"{what}: the API server sent a line that is not a watch event: "
                                        f"{line[:200]!r}")
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone(f"{what}: resourceVersion {resource_version} is too old ({obj.get('message')})")
                        raise KubeError(f"{what}: {obj.get('message') or obj}")
                    yield kind, obj
        except httpx.RequestError as exc:  # a broken connection, and also an undecodable body or a redirect loop
            if self.observer:
                self.observer("WATCH", None)
            raise Unreachable(f"{what}: cannot reach the Kubernetes API server at {self.server}: "
                              f"{exc or type(exc).__name__}") from exc

    async def _watch_client(self, session: Any) -> Any:
        """The HTTP client watches use: not the session's. httpcore looks at every pooled connection each time it
        places a request (``_assign_requests_to_connections``: a readability poll per connection, and a count of the
        idle ones per idle one), so every open watch in the session's pool (one per waiting restore) would make every
        request cost more. A profile of 50 restores showed that scan at about a third of the controller's time, and
        about as much after this split: the 16 workers' own connections are most of the pool. Made for the session in
        use (a new one after a certificate rotation); the credentials go with each request. Its pool has no limit:
        each watch holds its connection for up to a minute, and with httpx's default of 100 the 101st waiting restore's
        watch would wait for a free one instead of following its change."""
        import httpx

        if self._watch_session is None or self._watch_session_for is not session:
            verify = await self.api.auth.ssl_context()
            if self._closed:
                raise Unreachable(f"cannot watch {self.server}: the client was closed")
            if self._watch_session is not None and self._watch_session_for is session:
                return self._watch_session  # another watch made it while this one waited
            old = self._watch_session
            self._watch_session = httpx.AsyncClient(
                base_url=str(session.base_url), verify=verify, timeout=session.timeout, follow_redirects=True,
                proxy=getattr(self.api.auth, "proxy", None),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20))
            self._watch_session_for = session
            if old is not None:
                self._retire(old, after=self._watch_span)
        return self._watch_session

    async def close(self) -> None:
        """Close every HTTP client (the session, the watch client, the retired ones not closed yet): the connections
        end now, not when the process does. The Kube is not used afterwards."""
        self._closed = True
        clients = [self.api._session, self._watch_session, *self._retired_sessions]
        self._watch_session = self._watch_session_for = None
        self._retired_sessions.clear()
        for timer in self._retire_timers:
            timer.cancel()
        self._retire_timers.clear()
        for client in clients:
            if client is not None and not client.is_closed:
                await client.aclose()
        while self._closing:  # retired clients being closed right now: done before this returns
            await asyncio.wait(set(self._closing))

    def _retire(self, client: Any, after: float = 0.0) -> None:
        """Close ``client`` once the requests in flight on it must have ended (they are bounded by the timeout, or
        by ``after`` when longer: a watch's)."""
        if self._closed:  # nothing is sent on it any more
            self._close_now(client)
            return
        self._retired_sessions.add(client)

        def close() -> None:
            self._retire_timers.discard(timer)
            if client in self._retired_sessions:
                self._retired_sessions.discard(client)
                self._close_now(client)

        timer = asyncio.get_running_loop().call_later(max(self._timeout(), after) + 5.0, close)
        self._retire_timers.add(timer)

    def _close_now(self, client: Any) -> None:
        """Start closing ``client`` in a task of its own, which ``close`` waits for."""
        task = asyncio.get_running_loop().create_task(client.aclose())
        self._closing.add(task)  # a strong reference until it is done (the loop keeps only a weak one)
        task.add_done_callback(self._closing.discard)

    async def create(self, res: Resource, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        namespace = namespace or body.get("metadata", {}).get("namespace")
        name = body.get("metadata", {}).get("name")
        return await self.request("POST", res.url(namespace), body=body, what=self._what(res, name, namespace))

    async def patch(
        self,
        res: Resource,
        name: str,
        namespace: str | None,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch. Put ``metadata.resourceVersion`` in the patch to make it conditional (409 Conflict)."""
        return await self.request("PATCH", res.url(namespace, name, subresource), body=patch,
                                  content_type=MERGE_PATCH, what=self._what(res, name, namespace), resend_safe=True)

    async def json_patch(self, res: Resource, name: str, namespace: str | None, ops: builtins.list[dict[str, Any]]
                         ) -> dict[str, Any]:
        """RFC 6902 JSON patch (exact replacement of a map, e.g. a nodeSelector, which a merge patch would merge)."""
        return await self.request("PATCH", res.url(namespace, name), body=ops, content_type=JSON_PATCH,
                                  what=self._what(res, name, namespace))

    async def replace(self, res: Resource, body: dict[str, Any], *, subresource: str | None = None,
                      resend: bool = True) -> dict[str, Any]:
        """PUT. Sent again after a transient error when it carries ``metadata.resourceVersion`` (unless ``resend`` is
        False: the leader's Lease, whose own loop retries on its own clock)."""
        meta = body["metadata"]
        return await self.request("PUT", res.url(meta.get("namespace"), meta["name"], subresource), body=body,
                                  what=self._what(res, meta["name"], meta.get("namespace")),
                                  resend_safe=resend and bool(meta.get("resourceVersion")))

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = "Background",
        missing_ok: bool = True,
    ) -> bool:
        """Delete; returns False when it was already gone. ``uid``/``resource_version`` are preconditions."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            body["preconditions"] = preconditions
        try:
            await self.request("DELETE", res.url(namespace, name), body=body, what=self._what(res, name, namespace))
            return True
        except NotFound:
            if missing_ok:
                return False
            raise

    # -- scale subresource --------------------------------------------------------------------------------------

    async def resource_for(self, api_version: str, kind: str, *, scalable: bool = True) -> Resource | None:
        """The resource serving ``kind`` (by cached discovery). With ``scalable`` (the default), only if it has a
        ``/scale`` subresource; None otherwise."""
        key = (api_version, kind)
        check_api_version(api_version)
        if key not in self._discovered:
            url = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = await self.request("GET", url, what=f"discover {api_version}")
            except NotFound:
                doc = {"resources": []}
            names = {r["name"] for r in doc.get("resources", [])}
            found: tuple[Resource | None, bool] = (None, False)
            for r in doc.get("resources", []):
                if r.get("kind") == kind and "/" not in r["name"]:
                    found = (Resource(api_version, kind, r["name"], bool(r.get("namespaced", True))),
                             f"{r['name']}/scale" in names)
            self._discovered[key] = found
        served, has_scale = self._discovered[key]
        return served if (has_scale or not scalable) else None

    async def get_scale(self, res: Resource, name: str, namespace: str) -> dict[str, Any]:
        return await self.request("GET", res.url(namespace, name, "scale"), what=f"scale of {res.kind} {name}")

    async def set_scale(self, res: Resource, name: str, namespace: str, replicas: int) -> dict[str, Any]:
        return await self.request("PATCH", res.url(namespace, name, "scale"), body={"spec": {"replicas": replicas}},
                                  content_type=MERGE_PATCH, what=f"scale {res.kind} {name} to {replicas}",
                                  resend_safe=True)

    # -- events -------------------------------------------------------------------------------------------------

    async def event(self, obj: dict[str, Any], reason: str, message: str, *, type_: str = "Normal",
                    component: str = "pvc-restore-controller") -> None:
        """Record a core/v1 Event about ``obj``; failures are swallowed (events are best effort)."""
        from .model import format_time, now

        meta = obj.get("metadata") or {}
        stamp = format_time(now())
        namespace = meta.get("namespace") or "default"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'object')[:200]}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                "namespace": namespace, "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        counting = WRITES_ACCEPTED.set(None)  # a record of what happened, not progress
        try:
            await self.create(EVENTS, body, namespace)
        except KubeError:
            pass
        finally:
            WRITES_ACCEPTED.reset(counting)
