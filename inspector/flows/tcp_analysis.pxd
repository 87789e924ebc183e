# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cimport cython

cdef class FlowAnalysis:
    cdef public object base_seq, base_set, nextseq, nextseqtime, nextseqframe, maxseqtobeacked, lastack
    cdef public object lastacktime, lastnondupack, dupacknum, window, win_scale, is_first_ack
    cdef public object lastsegmentflags, unacked, acked_to

@cython.locals(fwd=FlowAnalysis, rev=FlowAnalysis)
cpdef tuple analyze(fwd, rev, frame, ts, seq, ack, seglen, flags, window, first_rtt)
