"""`kubectl pvc-restore --help` (of the group and of every command) and command completion import click and the CLI's
own light modules alone: none of kr8s, httpx, textual, asyncio, yaml, dateutil, the PVCRestore model (its dataclasses
cost tens of milliseconds), the Kube layer or difflib. Commands import what they need when they run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_pvc_restore.cli import COMMANDS

HEAVY = ("kr8s", "textual", "httpx", "yaml", "dateutil", "asyncio", "ssl", "json", "difflib",
         "kubectl_pvc_restore.model", "kubectl_pvc_restore.kube", "kubectl_pvc_restore.kubeconfig")

CHECK = """
import sys
sys.argv = ["kubectl-pvc_restore", *{args!r}]
from kubectl_pvc_restore.entry import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def heavy_modules(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK.format(args=list(args), heavy=HEAVY)], capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1]


def test_help_imports_no_heavy_module():
    assert heavy_modules("--help") == "HEAVY:"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_imports_no_heavy_module(name):
    assert heavy_modules(name, "--help") == "HEAVY:"


def test_command_completion_imports_no_heavy_module():
    assert heavy_modules("__complete", "sta") == "HEAVY:"
    assert heavy_modules("__complete", "start", "--") == "HEAVY:"


def test_connecting_does_not_import_httpx_command_line_tool():
    """httpx's __init__ imports its CLI (rich, pygments); the Kube layer stands a loader in for it (kube.py)."""
    code = """
import sys
from kubectl_pvc_restore import kube
kube._skip_httpx_cli()
import httpx, kr8s.asyncio
print(sorted(m for m in ("rich", "pygments") if m in sys.modules))
try:
    httpx.main(["--help"])  # the real tool, loaded when called
except SystemExit as exc:
    print("exit", exc.code, hasattr(sys.modules["httpx._main"], "print_help"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[]", out.stdout + out.stderr
    assert lines[-1] == "exit 0 True", out.stdout + out.stderr


FIRST_WORDS = sorted({name[:i] for name in COMMANDS for i in range(len(name) + 1)} | {"x", "stz", "S", "1", "ls"})


@pytest.mark.parametrize("word", FIRST_WORDS)
def test_the_first_word_is_completed_as_click_completes_it(word):
    from kubectl_pvc_restore.cli.complete import completions
    from kubectl_pvc_restore.entry import first_word

    assert first_word([word]) == completions([], word)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC019-_=. ", max_size=5),
       st.lists(st.sampled_from(["start", "-n", "ns", "--context", "list", "-A"]), max_size=2))
@settings(max_examples=150, deadline=None)
def test_the_fast_path_answers_only_what_it_answers_as_click_does(word, before):
    """Whatever is typed: the fast path either gives click's answer or leaves it to click."""
    from kubectl_pvc_restore.cli.complete import completions
    from kubectl_pvc_restore.entry import first_word

    fast = first_word([*before, word])
    if fast is not None:
        assert not before
        assert fast == completions([], word)


def test_completing_the_first_word_imports_neither_click_nor_a_command():
    code = """
import sys
from kubectl_pvc_restore.entry import complete
complete(["st"])
print(sorted(m for m in sys.modules if m == "click" or m.startswith(("click.", "kubectl_pvc_restore.cli"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.splitlines()
    assert out == ["start", ":4", "[]"], out


def help_output(entry: str, columns: int | None, *args: str) -> tuple[str, list[str]]:
    """What ``entry`` (``entry``: the executable's fast path; ``click``: click itself) prints for ``args``, and the
    click modules it imported."""
    import os

    main = "kubectl_pvc_restore.entry" if entry == "entry" else "kubectl_pvc_restore.cli"
    code = f"""
import sys
sys.argv = ["kubectl-pvc_restore", *{list(args)!r}]
from {main} import main
try:
    main()
except SystemExit:
    pass
print("CLICK:" + ",".join(sorted(m for m in sys.modules if m == "click" or m.startswith("click."))[:1]))
"""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    text, _, imported = out.rpartition("CLICK:")
    return text, [m for m in imported.strip().split(",") if m]


@pytest.mark.parametrize("columns", [None, 80, 110, 150, 60, 40])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_the_stored_help_is_what_click_prints_at_every_width(columns, flag):
    """At the stored widths (80 columns, also what a pipe gets; 110 or more) without importing click; at any other
    width click renders it. If the first assert fails, the help changed: run `python -m devtools.help_text`."""
    fast, fast_imported = help_output("entry", columns, flag)
    slow, _ = help_output("click", columns, flag)
    assert fast == slow
    stored = columns is None or columns >= 110 or columns == 80
    assert (fast_imported == []) == stored, fast_imported


def test_help_text_module_is_current():
    from devtools.help_text import source
    from kubectl_pvc_restore import help_text

    assert open(help_text.__file__).read() == source(), "run: python -m devtools.help_text"
