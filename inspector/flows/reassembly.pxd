# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cdef class Reassembler:
    cdef public object next_seq, offset, _ooo, _ooo_bytes, _history, index, deliver, on_gap
    cdef public object mismatches, gaps, gap_bytes, limit_hits, hol, resent, _recent, on_end
    cdef public object fin, on_resent

