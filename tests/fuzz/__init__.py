"""Fuzz harness for the capture readers and every decoder (``python -m tests.fuzz --help``).

Seeds come from the real captures under ``captures/`` (:mod:`.seeds`), mutants
from :mod:`.mutate` (and :mod:`.quic_protect` for QUIC plaintext), targets
drive each decoder through its public interface (:mod:`.targets`), and
:mod:`.runner` watches for exceptions, slow inputs and memory.
"""
