"""Validation of every name and namespace before it reaches an API path.

A name from a user (a CLI argument, a TUI field), from an annotation or from a status field is hostile until it is
checked here: ``../../api/v1/namespaces/x/configmaps/y`` is a valid Python string and, joined into a URL, another
object. Kubernetes' own rules (apimachinery's ``IsDNS1123Subdomain`` and ``IsDNS1123Label``) are the check: object
names are DNS-1123 subdomains (at most 253 characters of ``a-z 0-9 - .``, alphanumeric at both ends); namespaces are
DNS-1123 labels (at most 63 characters of ``a-z 0-9 -``). ``kube.Resource.url`` applies them to every request, so
nothing can build a path around them; the CLI, the TUI and the controller call them first for a message that names
the argument.
"""

from __future__ import annotations

import re

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN_MAX = 253
LABEL_MAX = 63


class InvalidName(ValueError):
    """A name or namespace that Kubernetes would never accept; the message says which and why."""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def subdomain_problem(value: object) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (an object name), or None when it is one."""
    if not isinstance(value, str) or not value:
        return "it is empty" if value == "" or value is None else "it is not a string"
    if len(value) > SUBDOMAIN_MAX:
        return f"it is longer than {SUBDOMAIN_MAX} characters"
    if not _SUBDOMAIN.fullmatch(value):
        return ("it must consist of lower case letters, digits, '-' and '.', and start and end with a letter or "
                "digit")
    return None


def label_problem(value: object) -> str | None:
    """Why ``value`` is not a DNS-1123 label (a namespace name), or None when it is one."""
    if not isinstance(value, str) or not value:
        return "it is empty" if value == "" or value is None else "it is not a string"
    if len(value) > LABEL_MAX:
        return f"it is longer than {LABEL_MAX} characters"
    if not _LABEL.fullmatch(value):
        return "it must consist of lower case letters, digits and '-', and start and end with a letter or digit"
    return None


def is_name(value: object) -> bool:
    return subdomain_problem(value) is None


def is_namespace(value: object) -> bool:
    return label_problem(value) is None


def check_name(value: object, what: str = "name") -> str:
    """``value`` if it is a valid object name; InvalidName naming ``what`` otherwise."""
    problem = subdomain_problem(value)
    if problem:
        raise InvalidName(f"{what} {_show(value)} is not a valid Kubernetes name: {problem}")
    return value  # type: ignore[return-value]


def check_namespace(value: object, what: str = "namespace") -> str:
    problem = label_problem(value)
    if problem:
        raise InvalidName(f"{what} {_show(value)} is not a valid Kubernetes namespace: {problem}")
    return value  # type: ignore[return-value]
