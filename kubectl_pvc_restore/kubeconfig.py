"""Pre-checks of the kubeconfig the CLI and the TUI are about to use, before kr8s reads it.

kr8s answers a bad kubeconfig with a bare KeyError, TypeError or AttributeError (no file name, no fix), and an
explicit ``--kubeconfig`` that does not exist makes it fall back silently to other credentials. ``check()`` finds the
file(s) the way kubectl does (``--kubeconfig``, else ``$KUBECONFIG``, a ``:``-separated list whose missing entries
are skipped, else ``~/.kube/config``; with none of them, the in-cluster service account), reads them, and raises
``KubeconfigError`` with a message that names the file and the fix for the first problem it finds. What it returns
(the files, the context and the namespace) is then handed to kr8s explicitly, so kr8s reads exactly what was checked.

Only the standard library and PyYAML; yaml is imported on first use (``--help`` imports click alone).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import shutil
from typing import Any, Mapping

from .names import label_problem

SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_PATH = "~/.kube/config"


class KubeconfigError(Exception):
    """The kubeconfig cannot be used; ``str()`` names the file, the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What the checked kubeconfig says: the files to load, the context to use, the namespace (``-n``, else the
    context's) and the cluster's server.

    ``in_cluster`` is True (and the files, context and server empty) when no kubeconfig file exists and the pod's
    service account is used.
    """

    paths: tuple[str, ...] = ()
    context: str | None = None
    namespace: str | None = None
    server: str | None = None
    in_cluster: bool = False

    @property
    def kubeconfig(self) -> str | None:
        """The value for kr8s's ``kubeconfig=`` (it splits on ``:`` like ``$KUBECONFIG``)."""
        return ":".join(self.paths) or None

    def describe(self) -> str:
        if self.in_cluster:
            return "the in-cluster service account"
        return _files(self.paths)


def _files(paths: tuple[str, ...] | list[str]) -> str:
    return f"kubeconfig {paths[0]}" if len(paths) == 1 else "kubeconfigs " + ", ".join(paths)


def _in_cluster(environ: Mapping[str, str], token: str) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(token)


def _candidates(kubeconfig: str | None, environ: Mapping[str, str]) -> tuple[list[str], str]:
    """The kubeconfig paths in the order kubectl looks at them, and where they came from."""
    if kubeconfig:
        return [os.path.expanduser(kubeconfig)], "--kubeconfig"
    if environ.get("KUBECONFIG"):
        entries = [os.path.expanduser(p) for p in environ["KUBECONFIG"].split(os.pathsep) if p]
        if entries:
            return list(dict.fromkeys(entries)), "$KUBECONFIG"
    home = environ.get("HOME")
    path = os.path.join(home, ".kube", "config") if home else os.path.expanduser(DEFAULT_PATH)
    return [path], "the default location"


def _load(path: str) -> Any:
    """The parsed YAML of one file (None when it is empty); KubeconfigError when it cannot be read or parsed."""
    import yaml

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        raise KubeconfigError(f"kubeconfig {path} is a directory, not a file; give the kubeconfig file's path") \
            from None
    except PermissionError:
        raise KubeconfigError(f"kubeconfig {path}: permission denied; make it readable by you "
                              f"(chmod u+r {path})") from None
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML{where}: {problem}; fix the file (or point "
                              "--kubeconfig / KUBECONFIG at another one)") from None


_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def _check_structure(path: str, config: dict) -> None:
    """kr8s indexes every entry of every file: one malformed entry anywhere breaks every connection."""
    for section, key in _SECTIONS:
        entries = config.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise KubeconfigError(f"kubeconfig {path}: {section} must be a list, not {_kind(entries)}; fix the "
                                  "file (kubectl config view shows what kubectl reads)")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise KubeconfigError(f"kubeconfig {path}: {section}[{index}] must be a mapping with name and "
                                      f"{key}, not {_kind(entry)}; fix the file")
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise KubeconfigError(f"kubeconfig {path}: {section}[{index}] has no name; fix the file")
            if not isinstance(entry.get(key), dict):
                raise KubeconfigError(f"kubeconfig {path}: {key} {name!r} has no {key} settings (a mapping under "
                                      f"{key}:); fix the file")
    current = config.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigError(f"kubeconfig {path}: current-context must be a context's name, not "
                              f"{_kind(current)}; set it with kubectl config use-context NAME")


def _kind(value: Any) -> str:
    return {list: "a list", dict: "a mapping", str: "a string", type(None): "empty"}.get(type(value),
                                                                                      type(value).__name__)


def _available(contexts: dict[str, Any]) -> str:
    return f"available contexts: {', '.join(sorted(contexts))}" if contexts else "it defines no contexts"


def _check_file_ref(what: str, value: Any, origin: str, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise KubeconfigError(f"{where}: {what} must be a file path; fix the file")
    path = os.path.expanduser(value)
    if os.path.isabs(path):
        found = os.path.isfile(path)
    else:  # kr8s tries the working directory, then the kubeconfig's directory (kubectl: the latter)
        found = os.path.isfile(path) or os.path.isfile(os.path.join(os.path.dirname(origin), path))
    if not found:
        raise KubeconfigError(f"{where}: {what} {value}: no such file; fix the path, or embed the file with "
                              f"{what}-data")


def _check_data(what: str, value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise KubeconfigError(f"{where}: {what} must be base64-encoded PEM; fix the file")
    if "-----" in value:
        return
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"{where}: {what} is not valid base64; fix the file (regenerate the kubeconfig)") \
            from None


def check(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_token: str = SERVICE_ACCOUNT_TOKEN,
) -> Resolved:
    """Check the kubeconfig that a connection with these flags would use; KubeconfigError with a fix when it is
    unusable. ``kubeconfig``, ``context`` and ``namespace`` are the ``--kubeconfig``, ``--context`` and ``-n`` flags
    (None when not given; with ``-n``, the context's own namespace is not used and not checked).
    """
    environ = os.environ if environ is None else environ
    candidates, origin = _candidates(kubeconfig, environ)
    existing = [p for p in candidates if os.path.exists(p)]
    if not existing:
        if origin != "--kubeconfig" and _in_cluster(environ, service_account_token):
            return Resolved(namespace=namespace or None, in_cluster=True)
        if origin == "--kubeconfig":
            raise KubeconfigError(f"kubeconfig {candidates[0]}: no such file (given with --kubeconfig); check the "
                                  "path")
        if origin == "$KUBECONFIG":
            listed = ", ".join(candidates)
            raise KubeconfigError(f"none of the kubeconfig files in $KUBECONFIG exists ({listed}); set KUBECONFIG "
                                  f"to your kubeconfig file, or unset it to use {DEFAULT_PATH}")
        raise KubeconfigError(f"no kubeconfig: {candidates[0]} does not exist and KUBECONFIG is not set; pass "
                              "--kubeconfig FILE or set KUBECONFIG (or run this inside a cluster, with a service "
                              "account)")

    loaded: list[tuple[str, dict]] = []
    for path in existing:
        data = _load(path)
        if data is None:
            continue  # kubectl reads an empty file as an empty config; kr8s cannot: leave it out
        if not isinstance(data, dict):
            raise KubeconfigError(f"kubeconfig {path} is not a kubeconfig: its top level is {_kind(data)}, not a "
                                  "mapping (apiVersion, clusters, contexts, users, current-context); fix the file")
        _check_structure(path, data)
        loaded.append((path, data))
    if not loaded:
        if len(existing) == 1:
            raise KubeconfigError(f"kubeconfig {existing[0]} is empty; write a kubeconfig into it (your "
                                  "cluster's admin or provider gives you one), or point --kubeconfig / KUBECONFIG "
                                  "at another file")
        raise KubeconfigError(f"the {_files(existing)} are all empty; point --kubeconfig / KUBECONFIG at a "
                              "kubeconfig file")
    paths = tuple(path for path, _ in loaded)
    files = _files(paths)

    # Merged like kr8s does (a later file's entry of the same name wins: that is the one kr8s will use), with the
    # file each entry came from.
    merged: dict[str, dict[str, tuple[dict, str]]] = {section: {} for section, _ in _SECTIONS}
    for path, data in loaded:
        for section, key in _SECTIONS:
            for entry in data.get(section) or []:
                merged[section][entry["name"]] = (entry[key], path)
    contexts = merged["contexts"]

    if context:
        if context not in contexts:
            raise KubeconfigError(f"{files} has no context {context!r} (given with --context); "
                                  f"{_available(contexts)}")
        chosen, chosen_by = context, "--context"
    else:
        # kubectl: the first file that sets current-context decides.
        setting = next(((path, data["current-context"]) for path, data in loaded if data.get("current-context")),
                       None)
        if setting is None:
            fix = ("choose one with: kubectl config use-context NAME (" + _available(contexts) + "), or pass "
                   "--context NAME") if contexts else "add a context to it (kubectl config set-context), or use " \
                                                      "another kubeconfig"
            raise KubeconfigError(f"{files} has no current-context; {fix}")
        path, chosen = setting
        if chosen not in contexts:
            raise KubeconfigError(f"kubeconfig {path}: its current-context {chosen!r} is not one of its contexts "
                                  f"({_available(contexts)}); fix it with: kubectl config use-context NAME, or pass "
                                  "--context NAME")
        chosen_by = "current-context"

    settings, context_file = contexts[chosen]
    where = f"kubeconfig {context_file}: context {chosen!r}"
    own_namespace = None if namespace else settings.get("namespace")
    if own_namespace is not None and (not isinstance(own_namespace, str)
                                      or (own_namespace and label_problem(own_namespace))):
        problem = label_problem(own_namespace) if isinstance(own_namespace, str) else "it is not a string"
        raise KubeconfigError(f"{where} sets namespace {own_namespace!r}, which is not a valid Kubernetes namespace "
                              f"({problem}); fix it with: kubectl config set-context {chosen} --namespace NAME")
    for key, section in (("cluster", "clusters"), ("user", "users")):
        name = settings.get(key)
        known = f"known {section}: {', '.join(sorted(merged[section])) or 'none'}"
        if not isinstance(name, str) or not name:
            raise KubeconfigError(f"{where} ({chosen_by}) names no {key}; set one with: kubectl config set-context "
                                  f"{chosen} --{key} NAME ({known})")
        if name not in merged[section]:
            raise KubeconfigError(f"{where} ({chosen_by}) uses {key} {name!r}, which {files} does not define "
                                  f"({known}); fix the context (kubectl config set-context {chosen} --{key} NAME) "
                                  f"or add the {key}")

    cluster_name = settings["cluster"]
    cluster, cluster_file = merged["clusters"][cluster_name]
    where = f"kubeconfig {cluster_file}: cluster {cluster_name!r}"
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise KubeconfigError(f"{where} has no server; set it with: kubectl config set-cluster {cluster_name} "
                              "--server https://HOST:PORT")
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"{where}: server {server!r} is not an http(s) URL; set it with: kubectl config "
                              f"set-cluster {cluster_name} --server https://HOST:PORT")
    if "certificate-authority" in cluster:
        _check_file_ref("certificate-authority", cluster["certificate-authority"], cluster_file, where)
    if "certificate-authority-data" in cluster:
        _check_data("certificate-authority-data", cluster["certificate-authority-data"], where)

    user_name = settings["user"]
    user, user_file = merged["users"][user_name]
    where = f"kubeconfig {user_file}: user {user_name!r}"
    for key in ("client-certificate", "client-key"):
        if key in user:
            _check_file_ref(key, user[key], user_file, where)
    for key in ("client-certificate-data", "client-key-data"):
        if key in user:
            _check_data(key, user[key], where)
    has_cert = "client-certificate" in user or "client-certificate-data" in user
    if has_cert != ("client-key" in user or "client-key-data" in user):  # kr8s would quietly send no certificate
        given, missing = ("certificate", "client-key") if has_cert else ("key", "client-certificate")
        raise KubeconfigError(f"{where} has a client {given} but no {missing} (or {missing}-data): a client "
                              "certificate needs both; fix the file (regenerate the kubeconfig)")
    if "token" in user and not isinstance(user["token"], str):
        raise KubeconfigError(f"{where}: token must be a string; fix the file")
    if "username" in user or "password" in user:
        raise KubeconfigError(f"cannot load Kubernetes credentials: username/password authentication was removed in "
                              f"Kubernetes 1.19 ({where}); use a token, a client certificate or a credential plugin "
                              "(exec)")
    if "auth-provider" in user:
        provider = user["auth-provider"] if isinstance(user["auth-provider"], dict) else {}
        if provider.get("name") != "oidc":
            raise KubeconfigError(f"{where}: auth-provider {provider.get('name')!r} is not supported (Kubernetes "
                                  "removed the gcp and azure providers in 1.26); use the provider's credential plugin "
                                  "(exec), e.g. gke-gcloud-auth-plugin or kubelogin")
        config = provider.get("config")
        token = config.get("id-token") if isinstance(config, dict) else None
        if not isinstance(token, str) or not token:
            raise KubeconfigError(f"{where}: its oidc auth-provider has no id-token; log in again (e.g. kubectl "
                                  "oidc-login), or use a credential plugin (exec)")
    if "exec" in user:
        exec_ = user["exec"]
        if not isinstance(exec_, dict) or not isinstance(exec_.get("command"), str) or not exec_.get("command"):
            raise KubeconfigError(f"{where}: exec needs a command; fix the file")
        if exec_.get("apiVersion") not in ("client.authentication.k8s.io/v1beta1", "client.authentication.k8s.io/v1"):
            raise KubeconfigError(f"{where}: exec apiVersion {exec_.get('apiVersion')!r} is not supported; use "
                                  "client.authentication.k8s.io/v1 (or v1beta1)")
        if shutil.which(exec_["command"]) is None:
            raise KubeconfigError(f"{where}: its credential command {exec_['command']!r} was not found (not on "
                                  "PATH); install it, or use another context")
    return Resolved(paths=paths, context=chosen, namespace=namespace or own_namespace or None, server=server)
