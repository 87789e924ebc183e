# Compiled build only (setup.py): see docs/ARCHITECTURE.md, "Compiled hot path".
# decode_fields walks a header block octet by octet: its counters and offsets are C integers.

cimport cython

cdef class HpackObserver:
    cdef public object _dyn
    cdef public Py_ssize_t _size, max_size, max_allowed, max_header_list_size
    cdef public bint synced, _unknown_room
    cdef public Py_ssize_t encoded_bytes, plain_bytes, blocks, _version
    cdef public dict _hcache, _pcache, _bcache, _pairs
    cdef public set _seen

    @cython.locals(pos=Py_ssize_t, end=Py_ssize_t, b=int, list_size=Py_ssize_t, fields=Py_ssize_t,
                   size=Py_ssize_t, index=Py_ssize_t, nlen=Py_ssize_t, vlen=Py_ssize_t, limit=Py_ssize_t)
    cpdef tuple decode_fields(self, bytes data)

    # C calls from decode_fields (no argument tuple, no boxed offsets)
    cdef _insert(self, name, value, Py_ssize_t size, pair)
    @cython.locals(b=int, length=Py_ssize_t, start=Py_ssize_t, stop=Py_ssize_t)
    cdef tuple _string(self, bytes data, Py_ssize_t pos, Py_ssize_t end)

# the static table, as read per field
cdef tuple _STATIC
cdef list _INDEXED_STATIC

# the Huffman automaton's tables as C arrays, its state and octets as C integers
cdef bytes _HUF_NEXT, _HUF_FLAGS, _HUF_SYM
cdef int _HUF_ACCEPTED, _HUF_EMIT, _HUF_FAIL
cdef bint _COMPILED

@cython.locals(out=bytearray, n=Py_ssize_t, state=int, flags=int, index=int, octet=int, i=Py_ssize_t)
cpdef bytearray huffman_octets(bytes data, Py_ssize_t start, Py_ssize_t stop)
