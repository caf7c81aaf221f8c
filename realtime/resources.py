"""Where the shipped models and presets are at run time.

``models/`` and ``configs/`` at the top of the source tree are their only copies. The build
maps them into the package as ``realtime.models`` and ``realtime.configs`` (``package-dir``
in ``pyproject.toml``), so a wheel, ``pip install .`` or ``pipx install .`` carries them, and
an editable install resolves the same names to the source folders themselves. They are
found through :mod:`importlib.resources`; a source tree run without installing (or an
editable install made before the mapping existed) falls back to the folders beside the
package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Shipped folders: name -> package that carries it.
SHIPPED = {"models": "realtime.models", "configs": "realtime.configs"}


def shipped_dir(name: str) -> Path:
    """The folder of the shipped ``name`` (``"models"`` or ``"configs"``) as a path."""
    try:
        root = resources.files(SHIPPED[name])
        if isinstance(root, Path) and root.is_dir():
            return root
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / name
