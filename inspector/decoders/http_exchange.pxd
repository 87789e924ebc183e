# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".
# A C-level class: built once per request, by C argument parsing and stores.

cdef class HttpExchange:
    cdef public object stream, method, path, authority, scheme, protocol, version, status, content_type
    cdef public object request_content_type, request_headers, response_headers, trailers, interim, pushed
    cdef public object request_ts, request_end_ts, response_ts, end_ts, request_arrival, response_arrival
    cdef public object end_arrival, request_frame, response_frame, end_frame, request_bytes, bytes, error
    cdef public object headers_reliable, grpc, observer
cdef dict _SUMMARY_KEYS
