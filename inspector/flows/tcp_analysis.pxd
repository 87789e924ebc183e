# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".
# Sequence numbers, windows and frame numbers are C integers (64-bit: a 32-bit value plus a length or a
# shifted window never overflows), so analyze's arithmetic and comparisons stay in C.

cimport cython

cdef class FlowAnalysis:
    cdef public Py_ssize_t base_seq, nextseq, nextseqframe, maxseqtobeacked, lastack, lastnondupack
    cdef public Py_ssize_t dupacknum, window, win_scale, lastsegmentflags
    cdef public double nextseqtime, lastacktime
    cdef public bint base_set, is_first_ack
    cdef public object unacked, acked_to

cdef Py_ssize_t _M32, _HALF, _ACK, _RST

@cython.locals(ta=Py_ssize_t, sfr=Py_ssize_t, nextseq_fwd=Py_ssize_t, rws=Py_ssize_t, shift=Py_ssize_t,
               rmax=Py_ssize_t, rnext=Py_ssize_t, rlast=Py_ssize_t, nextseq=Py_ssize_t, fw=Py_ssize_t,
               dn=Py_ssize_t, unext=Py_ssize_t, not_advanced=cython.bint)
cpdef tuple analyze(FlowAnalysis fwd, FlowAnalysis rev, Py_ssize_t frame, double ts, Py_ssize_t seq, Py_ssize_t ack,
                    Py_ssize_t seglen, Py_ssize_t flags, Py_ssize_t window, double first_rtt)

@cython.locals(unext=Py_ssize_t)
cdef object _acked(FlowAnalysis flow, Py_ssize_t ack, double ts)
