# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".

cimport cython

from inspector.flows.connection cimport Connection
from inspector.flows.tcp cimport TcpState


cdef class Pipeline:
    cdef public object keylog, on_event, segments, detail, registry, frame, connections, _flows
    cdef public object _udp_key, _frags, malformed, unknown_links, first_ts, last_ts, _last_start
    cdef public object addresses_forgotten, retirement, _next_sweep

    @cython.locals(conn=Connection, tcp=TcpState)
    cpdef run(self, packets)
