# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cimport cython

from inspector.flows.streamindex cimport StreamIndex

cdef class _Key:
    cdef public object stage, opener, decrypt, iv

cdef class _Side:
    cdef public object d, name, records, hs, hs_dead, keys, seq, stage
    cdef public object encrypting, pending12, plain_offset, dead, resync, lost, last_frame
    cdef public StreamIndex plain_index
    cdef public object last_ts, protected_seen, protected_opened, release_at

cdef class TlsDecoder:
    cdef public object ctx, inner_factory, sides, client_hello, server_hello, hrr, version, suite_id
    cdef public object alpn, resumed, resumption, early_offered, early_sent, early_status, _early_pending
    cdef public object _early_pending_bytes, tickets, certificate, alerts, times, frames, _key_problem_reported
    cdef public object _no_key_reason, _tls12_unsupported, _inner, _inner_state, _inner_pending
    cdef public object _inner_pending_bytes, _keylog_generation, record_log, _events

    @cython.locals(side=_Side)
    cpdef list feed(self, direction, data, offset, index)
    @cython.locals(n=Py_ssize_t, pos=Py_ssize_t, body=Py_ssize_t, end=Py_ssize_t, length=Py_ssize_t,
                   ctype=int, version=int, key=_Key)
    cpdef _whole_records(self, _Side side, data, offset, StreamIndex index, out)
