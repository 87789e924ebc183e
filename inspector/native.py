"""Which modules run compiled, and a guard against compiled modules older than their sources.

``pip install`` compiles the per-packet hot path with Cython (``setup.py``, ``HOT``): the same
Python sources, compiled. An editable install leaves each compiled module next to its source, and
Python prefers the compiled one, so an edit to the source would silently not run until the next
install. ``guard()`` (called when ``inspector`` is imported) loads the source instead of any compiled
module whose inputs (its source, its ``.pxd``, and those of the modules whose C-level classes it
uses) no longer match the CRC-32 recorded at build time, and instead of every
compiled module when the environment sets ``NETINSPECT_PURE=1``. Without a build record
(a plain checkout on ``PYTHONPATH``) nothing is compiled and the guard does nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zlib

# os.path, not pathlib: this runs at every start, and pathlib costs ~9 ms to import
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module name -> "compiled", "source" (NETINSPECT_PURE) or "source (changed since the build)"
status: dict[str, str] = {}


class _SourceFirst:
    """A meta path finder that loads the named modules from their ``.py`` files."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        source = self.sources.get(fullname)
        if source is None:
            return None
        if os.path.basename(source) == "__init__.py":  # a package: its submodules are found as usual
            return importlib.util.spec_from_file_location(
                fullname, source, submodule_search_locations=[os.path.dirname(source)])
        return importlib.util.spec_from_file_location(fullname, source)


def guard() -> None:
    """Route stale (or, under NETINSPECT_PURE, all) compiled modules to their sources."""
    try:
        from ._built import SOURCES
    except ImportError:
        return
    pure = bool(os.environ.get("NETINSPECT_PURE"))
    to_source: dict[str, str] = {}
    for module, (relpath, inputs, crc) in SOURCES.items():
        path = os.path.join(ROOT, relpath)
        if pure:
            status[module] = "source"
        elif not os.path.exists(path):
            continue
        else:
            current = 0
            try:
                for f in inputs:  # the source, its .pxd and those of the modules it cimports
                    with open(os.path.join(ROOT, f), "rb") as fh:
                        current = zlib.crc32(fh.read(), current)
            except OSError:
                current = None  # an input is gone: the build is stale
            if current == crc:
                status[module] = "compiled"
                continue
            status[module] = "source (changed since the build)"
        to_source[module] = path
    if to_source:
        sys.meta_path.insert(0, _SourceFirst(to_source))


def compiled_modules() -> list[str]:
    """The hot-path modules actually running compiled in this process (imported ones only)."""
    return sorted(name for name, mod in sys.modules.items()
                  if name in status and not getattr(mod, "__file__", "").endswith(".py"))
