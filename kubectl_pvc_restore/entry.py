"""The executables: ``kubectl-pvc_restore`` (``main``) and ``kubectl_complete-pvc_restore`` (``complete``, which
kubectl runs as ``kubectl_complete-pvc_restore ARGS... INCOMPLETE``; krew installs run ``kubectl-pvc_restore
__complete ARGS... INCOMPLETE`` instead).

``--help`` (``-h``) of the plugin itself is printed from ``kubectl_pvc_restore.help_text``, click's rendering stored
for the two widths most terminals give it, also without importing click (any other width: click renders it).

Completing the first word (a command name: ``kubectl pvc-restore st<TAB>``) is answered from the command table alone,
without importing click or any command module: the same names, in the same order, that click's completion gives
(tests/test_cli_imports.py compares them), in a fraction of the time. Anything else goes to click
(``kubectl_pvc_restore.cli.complete``).
"""

from __future__ import annotations

import sys

NO_FILE_COMPLETION = 4  # the last line ``:4``: the shell must not fall back to file names


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "__complete":
        complete(sys.argv[2:])
        return
    if sys.argv[1:] in (["--help"], ["-h"]):
        text = stored_help()
        if text is not None:
            sys.stdout.write(text)
            return
    from .cli import main as cli_main

    cli_main()


def stored_help() -> str | None:
    """The plugin's ``--help`` as click would print it here, when it is stored for this terminal's width
    (``kubectl_pvc_restore.help_text``); None otherwise (click renders it)."""
    from .help_text import HELP

    return HELP.get(max(min(_terminal_columns(), 110) - 2, 50))


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size()`` gives it to click ($COLUMNS, else the size of the
    terminal on standard output, else 80), without importing shutil."""
    import os

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
        columns = columns or 80
    return columns


def complete(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = first_word(argv)
    if names is None:
        from .cli.complete import main as click_complete

        click_complete(argv)
        return
    for name in names:
        print(name)
    print(f":{NO_FILE_COMPLETION}")


def first_word(argv: list[str]) -> list[str] | None:
    """The command names completing ``argv`` when it is only the first word, being typed, and that word cannot be an
    option (empty, or starting with a letter or digit: click offers options only for a word that does not); None
    otherwise."""
    if len(argv) != 1 or (argv[0] and not argv[0][0].isalnum()):
        return None
    from .commands import COMMANDS

    return [name for name in COMMANDS if name.startswith(argv[0])]
