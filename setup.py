"""Build netinspect; compile its per-packet hot path with Cython where a C compiler is at hand.

Everything else is in pyproject.toml. The modules in HOT are compiled from their unchanged Python
sources; for the hottest classes and methods, an augmenting ``.pxd`` beside the source (which Python
ignores) declares them as C-level classes and methods. A module that fails to compile (no compiler,
no Python headers) is simply left as Python; so is every module when NETINSPECT_PURE=1 is set at
install time. The build records a CRC-32 of each compiled module's inputs in ``inspector/_built.py``,
so that ``inspector/native.py`` can load the source instead of a compiled module whose inputs have
changed since (an editable install keeps both side by side).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent

# What the profiles of `summary` spend their time in (benchmarks/hotspots.py): the capture reader, the
# per-packet pipeline and TCP, TLS records, HTTP/2 frames with HPACK (HTTP/2 over TLS), HTTP/1.1 and DNS,
# and per connection its state, analyses, retirement and record (many small connections), and the JSON
# text of the records.
HOT = [
    "inspector/capture/reader.py",
    "inspector/net/ip.py",
    "inspector/pipeline.py",
    "inspector/flows/connection.py",
    "inspector/flows/tcp.py",
    "inspector/flows/tcp_analysis.py",
    "inspector/flows/reassembly.py",
    "inspector/flows/streamindex.py",
    "inspector/decoders/tls/decoder.py",
    "inspector/decoders/http2.py",
    "inspector/decoders/hpack_observer.py",
    "inspector/decoders/http_exchange.py",
    "inspector/decoders/http1.py",
    "inspector/decoders/dns.py",
    "inspector/analysis/__init__.py",
    "inspector/analysis/hol.py",
    "inspector/analysis/ledger.py",
    "inspector/analysis/rtt.py",
    "inspector/analysis/units.py",
    "inspector/retirement.py",
    "inspector/output/summary.py",
    "inspector/output/jsontext.py",
]

MANIFEST = HERE / "inspector" / "_built.py"


def _module(path: str) -> str:
    """The extension's name: a package's ``__init__.py`` compiles to ``pkg.__init__`` (built as
    ``pkg/__init__.*.so``, which Python loads for the package)."""
    return path.removesuffix(".py").replace("/", ".")


def _import_name(path: str) -> str:
    return _module(path).removesuffix(".__init__")


def _inputs(path: str) -> list[str]:
    """The files a compiled module is built from: its source, its augmenting ``.pxd`` (C types for
    its hot classes and functions) and, transitively, those of the modules that ``.pxd`` cimports
    (a compiled module that uses another's C-level classes must not outlive a change to them)."""
    files: list[str] = []
    todo = [path]
    while todo:
        source = todo.pop(0)
        if source in files:
            continue
        files.append(source)
        pxd = HERE / (source.removesuffix(".py") + ".pxd")
        if pxd.exists():
            files.append(str(pxd.relative_to(HERE)))
            for line in pxd.read_text().splitlines():
                if line.startswith("from inspector.") and " cimport " in line:
                    todo.append(line.split()[1].replace(".", "/") + ".py")
    return files


def _write_manifest(paths: list[str]) -> None:
    lines = [
        '"""Written by setup.py: the modules compiled by the last build, each with its source, the files it',
        'was built from (see _inputs) and their CRC-32, taken over them in that order."""',
        "",
        "SOURCES = {",
    ]
    for p in paths:
        inputs = _inputs(p)
        crc = 0
        for f in inputs:
            crc = zlib.crc32((HERE / f).read_bytes(), crc)
        lines.append(f"    {_import_name(p)!r}: ({p!r}, {tuple(inputs)!r}, {crc:#010x}),")
    lines += ["}", ""]
    MANIFEST.write_text("\n".join(lines))


def _remove_stale_builds(keep: list[str]) -> None:
    """Delete compiled modules an earlier editable install left in the tree for modules no longer
    compiled: Python would go on loading them instead of their sources."""
    kept = {_module(p) for p in keep}
    for built in (HERE / "inspector").rglob("*.so"):
        name = ".".join(built.relative_to(HERE).with_name(built.name.split(".")[0]).parts)
        if name not in kept:
            built.unlink()


def ext_modules() -> list[Extension]:
    """The compiled modules, or none when Cython is missing or NETINSPECT_PURE is set."""
    try:
        if os.environ.get("NETINSPECT_PURE"):
            raise ImportError
        from Cython.Build import cythonize
    except ImportError:
        MANIFEST.unlink(missing_ok=True)
        _remove_stale_builds([])
        return []
    _remove_stale_builds(HOT)
    _write_manifest(HOT)
    # optional=True: a module that does not compile stays Python instead of failing the install
    extensions = [Extension(_module(p), [p], optional=True) for p in HOT]
    return cythonize(
        extensions,
        build_dir="build/cython",  # the generated C stays out of the source tree
        # annotation_typing off: type hints stay hints, as in Python (Cython would otherwise turn a `float`
        # argument into a C double and reject None where a hint is loose); no faster with it on
        compiler_directives={"language_level": 3, "binding": True, "annotation_typing": False},
        quiet=True,
    )


# build_ext compiles one module at a time unless told; each takes 10-40 s
setup(ext_modules=ext_modules(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
