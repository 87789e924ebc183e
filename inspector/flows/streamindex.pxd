# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cdef class StreamIndex:
    cdef public object _starts, _spans, _lo, last

    cpdef add(self, span)
    cpdef locate(self, offset)
    cpdef list spans(self, start, end)
    cpdef release(self, offset)
