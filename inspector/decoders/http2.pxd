# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".
# The containers are typed (dict/list methods become C calls), and so is each side's HPACK observer
# (decode_fields is a C call); _frames' offsets and frame header fields are C integers.

cimport cython

from inspector.decoders.hpack_observer cimport HpackObserver
from inspector.decoders.http_exchange cimport HttpExchange
from inspector.flows.streamindex cimport StreamIndex

cdef class _Side:
    cdef public object direction, name, buf, pos, base, started, need_preface
    cdef public HpackObserver hpack
    cdef public object block, skip_to, resync
    cdef public dict settings
    cdef public list pending_settings
    cdef public object conn_window
    cdef public dict stream_windows
    cdef public object initial_window, max_frame_size
    cdef public dict stalls, reopened, pings
    cdef public object frames, last, ready, release_at, hol_frame
    cdef public list recent
    cdef public object sent_upto

cdef class Http2Decoder:
    cdef public object ctx, conn, upgrade_factory, body_observer_factory, sides
    cdef public list exchanges
    cdef public dict streams, states
    cdef public list max_stream, goaway
    cdef public object rst_count
    cdef public list stall_log
    cdef public object malformed
    cdef public dict tunnels
    cdef public object grpc
    cdef public list hol_held, hol_sent
    cdef public object _events
    cdef public dict _handlers

    @cython.locals(side=_Side)
    cpdef list feed(self, direction, data, offset, index)
    @cython.locals(n=Py_ssize_t, pos=Py_ssize_t, body=Py_ssize_t, end=Py_ssize_t, length=Py_ssize_t,
                   hi=int, lo=int, ftype=int, flags=int)
    cpdef _frames(self, _Side side, StreamIndex index, out)
    # ex: the stream's exchange (None until checked), its fields read and written in C
    @cython.locals(ex=HttpExchange)
    cpdef _on_data(self, _Side side, ev, sid, flags, length, payload, span, out)
    @cython.locals(ex=HttpExchange)
    cpdef _client_headers(self, _Side side, sid, headers, reliable, flags, span, out)
    @cython.locals(ex=HttpExchange)
    cpdef _server_headers(self, _Side side, sid, headers, reliable, flags, span, out)
    @cython.locals(ex=HttpExchange)
    cpdef _end_stream(self, _Side side, sid, span, out)
    cpdef _response_done(self, HttpExchange ex, sid, span, out)
    cpdef _consume_window(self, _Side side, sid, length, end_stream, span, out)

cdef object _fill_request(HttpExchange ex, list headers)
cdef object _get(list headers, object name)
