# Broadcast views of rows: where= masks (masked rows, the backward
# functions, Dask blocks) and sampling masks are read in place, never
# expanded to x's size.  A view is an array of len(row index) + 1 dimensions:
# each outer dimension 1 (broadcast) or the row index's, the last one n, or 1
# for one entry that stands for the whole row.

cdef enum:
    MAX_OUTER_DIMS = 64

cdef struct row_view:
    const char *base
    int ndim                                 # dimensions of the row index
    Py_ssize_t shape[MAX_OUTER_DIMS]
    Py_ssize_t strides[MAX_OUTER_DIMS]       # bytes; 0 where the view broadcasts
    Py_ssize_t length                        # entries along the row: n, or 1 for the whole row
    Py_ssize_t step                          # bytes between entries along the row (0 when length is 1)


cdef inline const char *view_row(const row_view *v, Py_ssize_t r) noexcept nogil:
    """Where row r's entries start."""
    cdef Py_ssize_t offset = 0
    cdef int d
    for d in range(v.ndim - 1, -1, -1):
        offset += (r % v.shape[d]) * v.strides[d]
        r = r // v.shape[d]
    return v.base + offset


cdef int fill_view(row_view *v, cnp.ndarray a, tuple outer_shape, Py_ssize_t n, bint unit_step,
                   int typenum=cnp.NPY_BOOL) except -1:
    """View ``a``, a bool array (or one of ``typenum``: sampling's logit_bias),
    over rows of the row index ``outer_shape``, n entries each; ``unit_step``:
    the entries of a row must be contiguous.  Only called for at least one
    row (NumPy gives empty arrays any strides)."""
    cdef int d, nd = len(outer_shape)
    if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != nd + 1 or nd > MAX_OUTER_DIMS:
        raise ValueError("selection: a bool mask with one dimension more than the row index is needed")
    v.length = cnp.PyArray_DIM(a, nd)
    v.step = 0 if v.length == 1 else cnp.PyArray_STRIDE(a, nd)
    if v.length not in (1, n) or (unit_step and v.length > 1 and v.step != 1):
        raise ValueError("selection: the mask's last dimension must be contiguous, or 1")
    v.base = <const char *> cnp.PyArray_DATA(a)
    v.ndim = nd
    for d in range(nd):
        v.shape[d] = outer_shape[d]
        if cnp.PyArray_DIM(a, d) not in (1, v.shape[d]):
            raise ValueError("selection: the mask does not broadcast to the row index")
        v.strides[d] = 0 if cnp.PyArray_DIM(a, d) == 1 else cnp.PyArray_STRIDE(a, d)
    return 0
