"""The compiled hot path (setup.py, inspector/native.py): it is what runs, it decodes exactly as the
Python sources do, and a source edited since the build is what runs instead of its stale build."""

from __future__ import annotations

import importlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import inspector
from inspector import native

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "captures" / "samples"
HOT = [line.split('"')[1] for line in (REPO / "setup.py").read_text().splitlines()
       if line.strip().startswith('"inspector/') and line.strip().endswith('.py",')]
NAMES = sorted(p.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for p in HOT)

# Decodes every sample (and a damaged copy of each) with summary --json and export, printing a
# digest of each output: run once with the compiled modules and once with NETINSPECT_PURE=1.
_DECODE_ALL = r"""
import hashlib, io, sys, contextlib
from inspector.cli import main
from inspector import native
for line in sys.stdin.read().splitlines():
    args = line.split("\t")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(args)
    print(code, hashlib.sha256(out.getvalue().encode()).hexdigest(), len(out.getvalue()), *args)
print("compiled", ",".join(native.compiled_modules()))
"""


def _damaged(src: Path, dst: Path, seed: int) -> Path:
    """A copy with a bit flipped at 40 places past the file header (the same places on every run)."""
    data = bytearray(src.read_bytes())
    rng = random.Random(seed)
    for _ in range(40):
        i = rng.randrange(64, len(data))
        data[i] ^= 1 << rng.randrange(8)
    dst.write_bytes(bytes(data))
    return dst


def _run_decode_all(commands: list[list[str]], pure: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "NETINSPECT_PURE"}
    if pure:
        env["NETINSPECT_PURE"] = "1"
    proc = subprocess.run([sys.executable, "-c", _DECODE_ALL], input="\n".join("\t".join(c) for c in commands),
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


def test_the_hot_path_runs_compiled() -> None:
    """The install compiled every module setup.py lists (unless NETINSPECT_PURE asks for none), and
    importing them loads the compiled ones: the suite tests what users run."""
    for name in NAMES:
        importlib.import_module(name)
    if os.environ.get("NETINSPECT_PURE"):
        assert native.compiled_modules() == []
        assert all(sys.modules[n].__file__.endswith(".py") for n in NAMES)
    else:
        try:
            from inspector._built import SOURCES
        except ImportError:
            pytest.fail("no inspector/_built.py: `pip install -e .` did not compile the hot path (is Cython "
                        "a build requirement, and gcc with Python's headers at hand?)")
        assert sorted(SOURCES) == NAMES
        assert native.compiled_modules() == NAMES, native.status


def test_compiled_and_source_decode_every_sample_alike(tmp_path: Path) -> None:
    """summary --json and export give the same bytes and exit codes compiled and as Python, on every
    sample capture with its key log and on a damaged copy of each (malformed events and their reasons)."""
    commands: list[list[str]] = []
    for i, pcap in enumerate(sorted(SAMPLES.glob("*.pcap"))):
        keys = pcap.with_suffix(".keys")
        keylog = ["--keylog", str(keys)] if keys.exists() else []
        damaged = _damaged(pcap, tmp_path / pcap.name, seed=i)
        for capture in (pcap, damaged):
            commands.append(["summary", str(capture), "--json", *keylog])
            commands.append(["export", str(capture), *keylog])
    compiled = _run_decode_all(commands, pure=False)
    pure = _run_decode_all(commands, pure=True)
    assert pure.pop() == "compiled "  # nothing compiled ran in the pure run
    ran_compiled = compiled.pop()
    if not os.environ.get("NETINSPECT_PURE"):
        assert ran_compiled.startswith("compiled inspector.")
    assert len(compiled) == len(pure) == len(commands)
    outputs = {line.split()[1] for line in compiled}
    assert len(outputs) > len(commands) // 2  # distinct outputs: the captures were really decoded
    for a, b in zip(compiled, pure):
        assert a == b


def test_a_source_changed_since_the_build_runs_instead_of_its_compiled_module(tmp_path: Path) -> None:
    """An edit to a compiled module's source takes effect at once (an editable install keeps the
    compiled module next to it, and Python would prefer that); unchanged modules stay compiled."""
    if not native.compiled_modules():
        pytest.fail("nothing is compiled here: run `pip install -e .` first (see test_the_hot_path_runs_compiled)")
    package = Path(inspector.__file__).parent
    copy = tmp_path / "inspector"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    http2 = copy / "decoders" / "http2.py"
    http2.write_text(http2.read_text() + "\nEDITED = True\n")
    analysis = copy / "analysis" / "__init__.py"  # a package's __init__ too
    analysis.write_text(analysis.read_text() + "\nEDITED = True\n")
    probe = ("import inspector.decoders.http2 as h, inspector.pipeline as p, inspector.native as n; "
             "import inspector.analysis as a, inspector.analysis.hol as hol; "
             "print(h.__file__); print(p.__file__); print(getattr(h, 'EDITED', False)); "
             "print(n.status['inspector.decoders.http2']); print(a.__file__, a.EDITED); print(hol.__file__)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NETINSPECT_PURE", None)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=True).stdout.splitlines()
    assert out[0] == str(http2)
    assert out[1].startswith(str(copy / "pipeline.")) and out[1].endswith(".so")
    assert out[2:4] == ["True", "source (changed since the build)"]
    assert out[4] == f"{analysis} True"
    assert out[5].startswith(str(copy / "analysis" / "hol.")) and out[5].endswith(".so")
