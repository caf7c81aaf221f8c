"""The shipped config presets (``*.toml``; ``--config NAME`` finds ``NAME.toml``).

This folder is the package ``realtime.configs`` once installed (see ``pyproject.toml``);
:mod:`realtime.resources` finds it at run time.
"""
