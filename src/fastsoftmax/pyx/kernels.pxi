# The C side, as the loops see it: the per-dtype kernel table and the
# dtype-independent helpers of csrc/ (row_kernels.h), the weighted
# finish (weighted.h), the result cache (result_cache.h) and the OpenMP stand-ins (openmp_compat.h).

cdef extern from "openmp_compat.h" nogil:
    int omp_get_max_threads()
    int omp_get_num_procs()
    int FS_HAVE_OPENMP

cdef extern from "row_kernels.h" nogil:
    Py_ssize_t FS_CHUNK, FS_LONG_ROW, FS_STAGE_BY_ROW
    int FS_SOFTMAX, FS_LOG_SOFTMAX, FS_LOGSUMEXP
    int FS_F32, FS_F64
    int FS_BF16, FS_F16
    ctypedef struct fs_params:
        int mode
        double temperature
    ctypedef struct fs_stats:
        double max
        int has_nan
        int64_t count
        double rest
        double rest_comp
        int any_entry
    int FS_ROW_NAN, FS_ROW_NORMAL, FS_ROW_MASKED
    ctypedef struct fs_row_result:
        int kind
        double max
        double log_sum
        double inv_sum
        double logsumexp
    ctypedef struct fs_kernels:
        void (*rows)(int op, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                     const fs_params *p, int stream) noexcept nogil
        void (*chunk_stats)(int op, const void *x, const unsigned char *sel, Py_ssize_t n, const fs_params *p,
                            fs_stats *s) noexcept nogil
        void (*chunk_write)(int op, const void *x, const unsigned char *sel, void *out, Py_ssize_t n,
                            const fs_params *p, const fs_row_result *r, int stream) noexcept nogil
        void (*columns)(int op, const void *x, void *out, Py_ssize_t n, Py_ssize_t stride,
                        Py_ssize_t lanes, Py_ssize_t out_stride, const fs_params *p) noexcept nogil
        void (*rows_where)(int op, const void *x, const unsigned char *sel, void *out, Py_ssize_t rows,
                           Py_ssize_t n, Py_ssize_t sel_step, const fs_params *p, int stream) noexcept nogil
        void (*backward)(int op, const void *g, const void *y, const unsigned char *sel, void *out,
                         Py_ssize_t rows, Py_ssize_t n, Py_ssize_t sel_step, const fs_params *p) noexcept nogil
        void (*weighted_stats)(const void *x, const void *b, Py_ssize_t b_step, Py_ssize_t n,
                               const fs_params *p, fs_stats *s) noexcept nogil
        void (*staged_rows)(int op, int in_format, int out_format, const void *x, void *out, Py_ssize_t rows,
                            Py_ssize_t n, const fs_params *p, void *buf) noexcept nogil
        double (*cross_entropy_row)(const void *x, Py_ssize_t n, const fs_params *p, int64_t target,
                                    const void *soft, const void *weight, double smoothing,
                                    double grad_scale, void *grad) noexcept nogil
        double (*kl_div_row)(const void *s, const void *t, Py_ssize_t n, const fs_params *p,
                             double grad_scale, void *grad, void *scratch) noexcept nogil
        double (*contrastive_row)(const void *srow, Py_ssize_t i, Py_ssize_t n, const fs_params *p,
                                  double scale_rows, double scale_columns, void *grad,
                                  void *scratch) noexcept nogil
    const fs_kernels *fs_kernels_for(int dtype)
    int fs_use_isa(const char *name)
    int fs_pick_isa(const double *cost, int widest)
    const char *fs_simd_target()
    void fs_params_init(int dtype, double temperature, fs_params *p)
    void fs_stats_init(fs_stats *s)
    void fs_stats_merge(const fs_stats *chunk, const fs_params *p, fs_stats *row)
    void fs_row_finish(int op, const fs_stats *row, Py_ssize_t n, const fs_params *p, fs_row_result *r)

cdef extern from "weighted.h" nogil:
    void fs_weighted_finish(const fs_stats *s, double temperature, double *value, double *sign)

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

cdef extern from "result_cache.h":
    ctypedef struct PyDataMem_Handler:
        pass
    PyDataMem_Handler fs_cache_handler
    size_t FS_CACHE_MIN_BYTES
    void fs_cache_release(int enable) noexcept nogil
    size_t fs_cache_held_bytes() noexcept nogil


cdef inline int dtype_code(int typenum) noexcept:
    """The kernel table's dtype for a NumPy float32 / float64 type number."""
    return FS_F32 if typenum == cnp.NPY_FLOAT32 else FS_F64


cdef inline Py_ssize_t dtype_size(int dtype) noexcept nogil:
    return 4 if dtype == FS_F32 else 8


cdef inline void store_value(char *out, Py_ssize_t i, Py_ssize_t size, double value) noexcept nogil:
    """out[i] = value, rounded to the row dtype (an element of ``size`` bytes)."""
    if size == 4:
        (<float *> out)[i] = <float> value
    else:
        (<double *> out)[i] = value
