"""The shipped mood models (``*.onnx``) and their card (``MODEL.md``).

This folder is the package ``realtime.models`` once installed (see ``pyproject.toml``);
:mod:`realtime.resources` finds it at run time. Training writes here.
"""
