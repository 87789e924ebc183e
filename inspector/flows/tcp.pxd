# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cdef class TcpState:
    cdef public object an, _pairs, reasm, _sinks, _stream_start, options, syn, synack
    cdef public object ack3, syn_ts, synack_ts, first_rtt, irtt_frame, ts_mru_syn, fin, fin_seq
    cdef public object fin_first, rst, rst_first, closed_at, data_after_fin, retransmissions, counts, rtt_count
    cdef public object rtt_sum, rtt_min, rtt_samples, mismatches, fills

    cpdef segment(self, d, frame, ts, seq, ack, flags, window, seglen, options)
    cpdef stream_segment(self, d, seq, flags, seglen, payload, frame, ts)
    cpdef acked(self, d, ack, frame, ts)
