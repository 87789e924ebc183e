# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cdef class StreamIndex:
    cdef public object _starts, _spans, _lo, last

