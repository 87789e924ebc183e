# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cdef class _Side:
    cdef public object direction, name, buf, pos, base, started, need_preface, hpack
    cdef public object block, skip_to, resync, settings, pending_settings, conn_window, stream_windows, initial_window
    cdef public object max_frame_size, stalls, reopened, pings, frames, last, ready, release_at
    cdef public object hol_frame, recent, sent_upto

cdef class Http2Decoder:
    cdef public object ctx, conn, upgrade_factory, body_observer_factory, sides, exchanges, streams, states
    cdef public object max_stream, goaway, rst_count, stall_log, malformed, tunnels, grpc, hol_held
    cdef public object hol_sent, _events, _handlers

    cpdef _frames(self, _Side side, index, out)
    cpdef _on_data(self, _Side side, ev, sid, flags, length, payload, span, out)
    cpdef _client_headers(self, _Side side, sid, headers, reliable, flags, span, out)
    cpdef _server_headers(self, _Side side, sid, headers, reliable, flags, span, out)
    cpdef _end_stream(self, _Side side, sid, span, out)
