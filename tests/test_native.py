"""The compiled hot path (setup.py, inspector/native.py): it is what runs, it decodes exactly as the
Python sources do, and a source edited since the build is what runs instead of its stale build."""

from __future__ import annotations

import ast
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


def test_an_edited_pxd_or_cimported_class_sends_its_users_to_source_too(tmp_path: Path) -> None:
    """A module compiled against another's C-level classes (its .pxd cimports them) cannot run with
    that module as Python: an edit to the other's source sends both to their sources, and an edit to
    a .pxd alone sends its module; the rest stays compiled and a capture still decodes."""
    if not native.compiled_modules():
        pytest.fail("nothing is compiled here: run `pip install -e .` first (see test_the_hot_path_runs_compiled)")
    package = Path(inspector.__file__).parent
    copy = tmp_path / "inspector"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    tcp = copy / "flows" / "tcp.py"  # pipeline.pxd cimports its TcpState
    tcp.write_text(tcp.read_text() + "\nEDITED = True\n")
    pxd = copy / "decoders" / "hpack_observer.pxd"
    pxd.write_text(pxd.read_text() + "\n# edited\n")
    probe = ("import inspector.native as n, inspector.pipeline, inspector.flows.reassembly, "
             "inspector.decoders.hpack_observer, inspector.decoders.http2, inspector.decoders.tls.decoder; "
             "print(*(f'{m}={n.status[m]}' for m in sorted(n.status)), sep='\\n')")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NETINSPECT_PURE", None)
    status = dict(line.split("=", 1) for line in subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
        check=True).stdout.splitlines())
    changed = "source (changed since the build)"
    assert status["inspector.flows.tcp"] == changed
    assert status["inspector.pipeline"] == changed
    assert status["inspector.decoders.hpack_observer"] == changed
    assert status["inspector.decoders.http2"] == changed  # http2.pxd cimports HpackObserver
    assert status["inspector.flows.reassembly"] == "compiled"
    assert status["inspector.decoders.tls.decoder"] == "compiled"
    # mixed: compiled reassembly and TLS under a Python pipeline, TCP state, HTTP/2 and HPACK
    sample = SAMPLES / "http2-lossy.pcap"
    run = [sys.executable, "-m", "inspector", "summary", str(sample), "--keylog", str(sample.with_suffix(".keys")),
           "--json"]
    mixed = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    plain = subprocess.run(run, capture_output=True, text=True, env={**env, "NETINSPECT_PURE": "1"}, cwd=tmp_path,
                           check=True).stdout
    assert '"app": "h2"' in mixed
    assert mixed == plain


def _pxd_classes(pxd: Path) -> dict[str, tuple[set[str], set[str]]]:
    """cdef class name -> (declared attributes, cpdef method names) of an augmenting .pxd."""
    classes: dict[str, tuple[set[str], set[str]]] = {}
    current = None
    for line in pxd.read_text().splitlines():
        if line.startswith("cdef class "):
            current = classes.setdefault(line.split()[2].rstrip(":"), (set(), set()))
        elif current is not None and line.startswith("    cdef public "):  # cdef public TYPE a, b, ...
            current[0].update(a.strip() for a in line.removeprefix("    cdef public ").split(None, 1)[1].split(","))
        elif current is not None and line.startswith("    cpdef "):
            current[1].add(line.split("(")[0].split()[-1])
        elif line and not line.startswith(" "):
            current = None
    return classes


def _pxd_module_names(pxd: Path) -> tuple[set[str], set[str]]:
    """The module-level C functions (``cdef``/``cpdef`` with arguments) and C globals
    (``cdef TYPE a, b``) an augmenting .pxd declares."""
    functions: set[str] = set()
    constants: set[str] = set()
    for line in pxd.read_text().splitlines():
        if line.startswith(("cdef ", "cpdef ")) and not line.startswith("cdef class "):
            if "(" in line:
                functions.add(line.split("(")[0].split()[-1])
            else:
                constants.update(a.strip() for a in line.split(None, 2)[2].split(","))
    return functions, constants


def _class_attributes(source: Path, name: str) -> tuple[set[str], set[str]]:
    """A class's attributes (its __slots__, else every ``self.x`` it assigns) and its method names."""
    tree = ast.parse(source.read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "__slots__":
            return set(ast.literal_eval(stmt.value)), methods
    assigned: set[str] = set()
    for node in ast.walk(cls):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    assigned.add(t.attr)
    return assigned, methods


def test_each_compiled_class_declares_exactly_the_attributes_its_source_uses() -> None:
    """A class a .pxd makes a C-level class only has the attributes the .pxd declares: one its source
    assigns but the .pxd lacks would fail only in the compiled build (and one left over in the .pxd
    would hide a rename). Declared methods must exist in the source."""
    pxds = sorted((REPO / "inspector").rglob("*.pxd"))
    assert pxds
    for pxd in pxds:
        source = pxd.with_suffix(".py")
        assert str(source.relative_to(REPO)) in HOT, f"{pxd.name} belongs to a module setup.py does not compile"
        for name, (declared, cpdefs) in _pxd_classes(pxd).items():
            attributes, methods = _class_attributes(source, name)
            assert declared == attributes, (pxd.name, name, declared ^ attributes)
            assert cpdefs <= methods, (pxd.name, name, cpdefs - methods)
        functions, constants = _pxd_module_names(pxd)
        tree = ast.parse(source.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        targets = [t for n in tree.body for t in (n.targets if isinstance(n, ast.Assign) else
                                                   [n.target] if isinstance(n, ast.AnnAssign) else [])]
        assigned = {t.id for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                    if isinstance(t, ast.Name)}
        assert functions <= defined, (pxd.name, functions - defined)
        assert constants <= assigned, (pxd.name, constants - assigned)
