# Augments jsontext.py in the compiled build (Python never reads this file): C functions and locals
# for the encoder's recursion and float_text's integer arithmetic.
import cython

cpdef str dumps(object obj)

@cython.locals(ax=cython.double, n=cython.longlong, q=cython.longlong, frac=cython.longlong, cut=cython.Py_ssize_t)
cpdef str float_text(double x)

@cython.locals(t=object)
cdef object _value(object obj, list parts, dict memo, int depth)

cdef str _float(double x)

@cython.locals(first=cython.bint, key=object)
cdef object _dict(object obj, list parts, dict memo, int depth)

@cython.locals(first=cython.bint)
cdef object _list(object obj, list parts, dict memo, int depth)

cdef double _EXACT_BELOW, _FIXED_FROM
cdef int _MAX_DEPTH, _MEMO_MAX
cdef object _float_repr, _string
