# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cdef class Connection:
    cdef public object id, transport, addrs, ports, start, end, bytes, dir_packets
    cdef public object dir_bytes, first_frame, last_frame, tcp, decoder, decoder_state, ctx, malformed
    cdef public object early_gaps, prev_start

