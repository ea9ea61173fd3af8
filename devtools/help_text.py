"""Write kubectl_pvc_restore/help_text.py: ``kubectl pvc-restore --help`` as click renders it at the two widths most
terminals give it (80 columns, the width of output that is not a terminal; 110 or more, where the help stops
growing), so that ``kubectl_pvc_restore.entry`` prints it without importing click. tests/test_cli_imports.py fails
when the stored text is not what click prints; run ``python -m devtools.help_text`` then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "kubectl_pvc_restore" / "help_text.py"
#: Terminal columns -> click's help width (``max(min(columns, 110) - 2, 50)``).
COLUMNS = (80, 110)


def click_help(columns: int) -> str:
    """What click prints for ``--help`` with ``columns`` terminal columns."""
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run([sys.executable, "-c", "from kubectl_pvc_restore.cli import main; main()", "--help"],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout


def source() -> str:
    lines = ['"""``kubectl pvc-restore --help`` as click renders it, by help width (written by ``python -m '
             'devtools.help_text``;', 'tests/test_cli_imports.py checks it against click)."""', "", "HELP = {"]
    for columns in COLUMNS:
        lines.append(f"    {min(columns, 110) - 2}: (")
        lines += [f"        {line!r}" for line in click_help(columns).splitlines(keepends=True)]
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TARGET.write_text(source())
    print(f"wrote {TARGET}")
