# Sampling (fastsoftmax.sample, fastsoftmax.verify_draft): one index per row
# drawn after the edits and filters of csrc/sample_kernels.h, whose
# probabilities come from the kernel table.  Each thread keeps its own
# sampler (the call's needs, the temperature constants of its last row,
# scratch rows) in its scratch.  The uniform numbers are drawn here, before
# the rows run, from one Generator in row order or from each row's own, so
# the result is the same for any number of threads.

from cpython.pycapsule cimport PyCapsule_GetPointer

cdef extern from "numpy/random/bitgen.h":
    ctypedef struct bitgen_t:
        void *state
        double (*next_double)(void *st) nogil

cdef extern from "sample_kernels.h" nogil:
    int FS_SAMPLE_NAN, FS_SAMPLE_POS_INF, FS_SAMPLE_NOTHING, FS_SAMPLE_NO_MEMORY, FS_SAMPLE_BAD_TOKEN
    int FS_SAMPLE_BAD_PROBS
    int FS_LOGPROBS_NONE, FS_LOGPROBS_RAW, FS_LOGPROBS_PROCESSED
    ctypedef struct fs_sample_needs:
        Py_ssize_t top_k
        int top_p, edited, penalties
        Py_ssize_t top_n
        int verify
    ctypedef struct fs_sample_row:
        double temperature
        Py_ssize_t top_k
        double top_p, min_p, repetition, presence, frequency
        const int64_t *history
        Py_ssize_t history_len
        const void *bias
        Py_ssize_t bias_stride
        const unsigned char *mask
        Py_ssize_t mask_stride
    ctypedef struct fs_sample_logprobs:
        int kind
        double *logprob
        int64_t *top_tokens
        double *top_logprobs
    ctypedef struct fs_sampler:
        pass
    fs_sampler *fs_sampler_new(int dtype, Py_ssize_t n, const fs_sample_needs *needs)
    void fs_sampler_free(fs_sampler *s)
    int64_t fs_sampler_row(fs_sampler *s, const void *x, const fs_sample_row *row, double u,
                           const fs_sample_logprobs *lp)
    Py_ssize_t fs_sampler_verify(fs_sampler *s, const void *x, Py_ssize_t k, const int64_t *draft, const void *q,
                                 const fs_sample_row *row, const double *u, int64_t *tokens)

SAMPLE_NAN = FS_SAMPLE_NAN
SAMPLE_POS_INF = FS_SAMPLE_POS_INF
SAMPLE_NOTHING = FS_SAMPLE_NOTHING
SAMPLE_NO_MEMORY = FS_SAMPLE_NO_MEMORY
SAMPLE_BAD_TOKEN = FS_SAMPLE_BAD_TOKEN
SAMPLE_BAD_PROBS = FS_SAMPLE_BAD_PROBS
LOGPROBS_RAW = FS_LOGPROBS_RAW
LOGPROBS_PROCESSED = FS_LOGPROBS_PROCESSED

_GENERATOR = np.random.Generator
# top_k beyond any row's length keeps everything
MAX_TOP_K = 1 << 62

# The per-row settings, in the order of sample()'s `settings` tuple.
cdef enum:
    S_TEMPERATURE, S_TOP_P, S_MIN_P, S_REPETITION, S_PRESENCE, S_FREQUENCY, S_COUNT


ctypedef struct sample_job:
    loop_job loop
    int dtype
    fs_sample_needs needs
    const char *x
    Py_ssize_t n, row_bytes
    const double *settings[<int> S_COUNT]
    Py_ssize_t steps[<int> S_COUNT]     # 0: one value for every row
    const int64_t *top_k
    Py_ssize_t top_k_step
    const int64_t *history             # history_len per row, or NULL
    Py_ssize_t history_len
    const row_view *mask               # or NULL: every entry
    const row_view *bias               # or NULL
    Py_ssize_t item                    # bytes of a row entry
    const double *uniforms             # per_row per row
    Py_ssize_t per_row
    int logprobs                       # enum fs_logprobs
    double *logprob
    int64_t *top_tokens
    double *top_logprobs
    int64_t *out
    # verify_draft: a row (item) is a request of k + 1 target rows
    Py_ssize_t k
    const int64_t *draft
    const char *q                      # or NULL
    int64_t *tokens


cdef inline void row_settings(const sample_job *job, Py_ssize_t r, fs_sample_row *row) noexcept nogil:
    row.temperature = job.settings[<int> S_TEMPERATURE][r * job.steps[<int> S_TEMPERATURE]]
    row.top_k = job.top_k[r * job.top_k_step]
    row.top_p = job.settings[<int> S_TOP_P][r * job.steps[<int> S_TOP_P]]
    row.min_p = job.settings[<int> S_MIN_P][r * job.steps[<int> S_MIN_P]]
    row.repetition = job.settings[<int> S_REPETITION][r * job.steps[<int> S_REPETITION]]
    row.presence = job.settings[<int> S_PRESENCE][r * job.steps[<int> S_PRESENCE]]
    row.frequency = job.settings[<int> S_FREQUENCY][r * job.steps[<int> S_FREQUENCY]]
    row.history = job.history + r * job.history_len if job.history != NULL else NULL
    row.history_len = job.history_len if job.history != NULL else 0
    row.mask, row.mask_stride, row.bias, row.bias_stride = NULL, 0, NULL, 0
    if job.mask != NULL:
        row.mask, row.mask_stride = <const unsigned char *> view_row(job.mask, r), job.mask.step
    if job.bias != NULL:
        row.bias, row.bias_stride = <const void *> view_row(job.bias, r), job.bias.step // job.item


cdef inline fs_sampler *thread_sampler(const sample_job *job, char *scratch) noexcept nogil:
    """This thread's sampler, made on its first item (NULL: no memory)."""
    cdef fs_sampler **sampler = <fs_sampler **> scratch
    if sampler[0] == NULL:
        sampler[0] = fs_sampler_new(job.dtype, job.n, &job.needs)
    return sampler[0]


cdef void sample_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    """Rows [start, stop) with this thread's sampler."""
    cdef const sample_job *job = <const sample_job *> loop
    cdef fs_sampler *sampler = thread_sampler(job, scratch)
    cdef fs_sample_row row
    cdef fs_sample_logprobs lp
    cdef Py_ssize_t r, top_n = job.needs.top_n
    lp.kind = job.logprobs
    for r in range(start, stop):
        if sampler == NULL:
            job.out[r] = FS_SAMPLE_NO_MEMORY
            continue
        row_settings(job, r, &row)
        if job.logprobs != FS_LOGPROBS_NONE:
            lp.logprob, lp.top_tokens, lp.top_logprobs = job.logprob + r, job.top_tokens + r * top_n, \
                job.top_logprobs + r * top_n
        job.out[r] = fs_sampler_row(sampler, job.x + r * job.row_bytes, &row, job.uniforms[r * job.per_row],
                                    &lp if job.logprobs != FS_LOGPROBS_NONE else NULL)


cdef void verify_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    """Requests [start, stop): k + 1 target rows each."""
    cdef const sample_job *job = <const sample_job *> loop
    cdef fs_sampler *sampler = thread_sampler(job, scratch)
    cdef fs_sample_row row
    cdef Py_ssize_t b
    for b in range(start, stop):
        if sampler == NULL:
            job.out[b] = FS_SAMPLE_NO_MEMORY
            continue
        row_settings(job, b, &row)
        job.out[b] = fs_sampler_verify(sampler, job.x + b * (job.k + 1) * job.row_bytes, job.k,
                                       job.draft + b * job.k,
                                       job.q + b * job.k * job.row_bytes if job.q != NULL else NULL,
                                       &row, job.uniforms + b * job.per_row, job.tokens + b * (job.k + 1))


cdef void sample_release(const loop_job *loop, char *scratch) noexcept nogil:
    fs_sampler_free((<fs_sampler **> scratch)[0])


# ---- uniform numbers ---------------------------------------------------------------

cdef int draw_uniforms(object rng, const double *temperatures, Py_ssize_t t_step, Py_ssize_t rows,
                       Py_ssize_t per_row, double *out) except -1:
    """per_row uniform numbers in [0, 1) for each row with T > 0, 0 for the
    others: from one Generator in row order (the numbers ``random()`` would
    give), or row r's from ``rng[r]`` (a list or tuple of Generators).  Any
    other rng (None, an int seed) makes a Generator with
    numpy.random.default_rng.  Arguments are checked by fastsoftmax._args."""
    cdef Py_ssize_t r, j, first = rows
    cdef bitgen_t *bits
    cdef bint single = isinstance(rng, _GENERATOR)
    if not single and not isinstance(rng, (list, tuple)):
        rng, single = np.random.default_rng(rng), True
    for r in range(rows):
        if not temperatures[r * t_step] > 0.0:
            memset(out + r * per_row, 0, per_row * sizeof(double))
        elif single:
            first = r
            break
        else:
            draw_from(rng[r], per_row, out + r * per_row)
    if first < rows:
        # one Generator: its lock held once, the rows with T > 0 in order
        bit_generator = rng.bit_generator
        bits = <bitgen_t *> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
        with bit_generator.lock:
            for r in range(first, rows):
                if temperatures[r * t_step] > 0.0:
                    for j in range(per_row):
                        out[r * per_row + j] = bits.next_double(bits.state)
                else:
                    memset(out + r * per_row, 0, per_row * sizeof(double))
    return 0


cdef int draw_from(object generator, Py_ssize_t count, double *out) except -1:
    """count numbers of ``generator.random()``, through its C bit generator,
    under the lock its methods hold."""
    bit_generator = generator.bit_generator
    cdef bitgen_t *bits = <bitgen_t *> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    cdef Py_ssize_t j
    with bit_generator.lock:
        for j in range(count):
            out[j] = bits.next_double(bits.state)
    return 0


# ---- the common call ---------------------------------------------------------------

# Up to this many rows the fast path keeps its uniform numbers on the stack.
cdef enum:
    STACK_UNIFORMS = 64


def try_sample(x, axis, temperature, top_k, top_p, min_p, rng, num_threads):
    """``sample(x, axis, temperature=..., top_k=..., top_p=..., min_p=...,
    rng=..., num_threads=...)`` for the common call, or None to take the
    general path (fastsoftmax._sample, the single validation path).

    Handles only arguments that need no conversion and cannot be invalid: an
    aligned, native, C-contiguous float32/float64 array of >= 1 dimension
    with rows along the last axis, a float or int temperature >= 0, top_k
    None or an int >= 0, top_p None or a float in (0, 1], min_p None or a
    float in [0, 1], rng a numpy Generator, None or an int >= 0, threads
    None or an int >= 1.
    The caller passes only calls without where=, history, penalties,
    logit_bias and log-probabilities.  A row with nothing to draw raises as
    the general path does (fastsoftmax._sample._raise_for)."""
    if type(x) is not cnp.ndarray:
        return None
    if not isinstance(rng, _GENERATOR) and not (rng is None or (type(rng) is int and rng >= 0)):
        return None
    cdef cnp.ndarray a = <cnp.ndarray> x
    cdef int typenum = cnp.PyArray_TYPE(a)
    cdef int ndim = cnp.PyArray_NDIM(a)
    if ((typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64) or ndim < 1 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or not cnp.PyArray_ISALIGNED(a) or not cnp.PyArray_ISNOTSWAPPED(a)):
        return None
    if type(axis) is not int or (axis != -1 and axis != ndim - 1):
        return None
    cdef double t, p = 1.0, mp = 0.0
    cdef Py_ssize_t k = 0
    if type(temperature) is float or type(temperature) is int:
        try:
            t = temperature
        except OverflowError:
            return None
        if not t >= 0.0:
            return None
    else:
        return None
    if top_k is not None:
        if type(top_k) is not int or top_k < 0:
            return None
        k = <Py_ssize_t> min(top_k, MAX_TOP_K)
    if top_p is not None:
        if type(top_p) is not float or not 0.0 < <double> top_p <= 1.0:
            return None
        p = top_p
    if min_p is not None:
        if type(min_p) is not float or not 0.0 <= <double> min_p <= 1.0:
            return None
        mp = min_p
    cdef int threads = 0
    if num_threads is not None:
        if type(num_threads) is not int or num_threads < 1 or (num_threads > 1 and not FS_HAVE_OPENMP):
            return None
        threads = <int> min(num_threads, MAX_THREADS)

    cdef Py_ssize_t n = cnp.PyArray_DIM(a, ndim - 1)
    cdef cnp.npy_intp rows = 1
    cdef int d
    for d in range(ndim - 1):
        rows *= cnp.PyArray_DIM(a, d)
    cdef double stack_uniforms[<int> STACK_UNIFORMS]
    cdef double *uniforms = stack_uniforms
    cdef cnp.ndarray heap_uniforms
    if rows > STACK_UNIFORMS:
        heap_uniforms = cnp.PyArray_EMPTY(1, &rows, cnp.NPY_FLOAT64, 0)
        uniforms = <double *> cnp.PyArray_DATA(heap_uniforms)
    draw_uniforms(rng, &t, 0, rows, 1, uniforms)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(ndim - 1, cnp.PyArray_DIMS(a), cnp.NPY_INT64, 0)
    cdef int64_t neutral_k = 0
    cdef double one = 1.0, zero = 0.0
    cdef sample_job job
    job.loop.run, job.loop.release, job.loop.align = sample_run, sample_release, 1
    job.loop.scratch_bytes, job.loop.zero_scratch = sizeof(fs_sampler *), True
    job.dtype = dtype_code(typenum)
    job.needs.top_k, job.needs.top_p, job.needs.edited, job.needs.penalties = 0 < k < n, p < 1.0, 0, 0
    job.needs.top_n, job.needs.verify = 0, 0
    job.x, job.n, job.item = <const char *> cnp.PyArray_DATA(a), n, dtype_size(job.dtype)
    job.row_bytes = n * job.item
    job.settings[<int> S_TEMPERATURE], job.settings[<int> S_TOP_P], job.settings[<int> S_MIN_P] = &t, &p, &mp
    job.settings[<int> S_REPETITION], job.settings[<int> S_PRESENCE], job.settings[<int> S_FREQUENCY] = \
        &one, &zero, &zero
    memset(job.steps, 0, sizeof(job.steps))
    job.top_k, job.top_k_step = <const int64_t *> &k, 0
    job.history, job.history_len, job.mask, job.bias = NULL, 0, NULL, NULL
    job.uniforms, job.per_row = uniforms, 1
    job.logprobs, job.logprob, job.top_tokens, job.top_logprobs = FS_LOGPROBS_NONE, NULL, NULL, NULL
    job.out = <int64_t *> cnp.PyArray_DATA(out)
    job.k, job.draft, job.q, job.tokens = 0, NULL, NULL, NULL
    run_or_raise(&job.loop, rows, call_threads(threads, rows * n), "sample(): no memory for the sampler of each thread")
    cdef Py_ssize_t r
    for r in range(rows):
        if job.out[r] < 0:
            from . import _sample
            _sample._raise_for(out.reshape(-1), tuple(x.shape[:ndim - 1]), np.array([t]))
    if ndim == 1:
        return out[()]
    return out


# ---- the general call --------------------------------------------------------------

cdef void fill_settings(sample_job *job, tuple settings, Py_ssize_t rows) except *:
    cdef int i
    for i in range(S_COUNT):
        a = <cnp.ndarray> settings[i]
        if (cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or cnp.PyArray_SIZE(a) not in (1, rows)):
            raise ValueError("sample(): every setting must be C-contiguous float64, one value or one per row")
        job.settings[i] = <const double *> cnp.PyArray_DATA(a)
        job.steps[i] = 0 if cnp.PyArray_SIZE(a) == 1 else 1


cdef Py_ssize_t top_k_settings(sample_job *job, cnp.ndarray top_k, Py_ssize_t rows) except -1:
    if (cnp.PyArray_TYPE(top_k) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(top_k)
            or cnp.PyArray_SIZE(top_k) not in (1, rows)):
        raise ValueError("sample(): top_k must be C-contiguous int64, one value or one per row")
    job.top_k, job.top_k_step = <const int64_t *> cnp.PyArray_DATA(top_k), 0 if cnp.PyArray_SIZE(top_k) == 1 else 1
    return 0


cdef void start_job(sample_job *job, cnp.ndarray x, Py_ssize_t n, tuple settings, cnp.ndarray top_k,
                    Py_ssize_t rows) except *:
    cdef int typenum = cnp.PyArray_TYPE(x)
    if (cnp.PyArray_NDIM(x) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)):
        raise ValueError("sample() needs a C-contiguous float32/float64 array of 2 dimensions")
    memset(job, 0, sizeof(sample_job))
    job.loop.release, job.loop.align = sample_release, 1
    job.loop.scratch_bytes, job.loop.zero_scratch = sizeof(fs_sampler *), True
    job.dtype = dtype_code(typenum)
    job.x, job.n, job.item = <const char *> cnp.PyArray_DATA(x), n, dtype_size(job.dtype)
    job.row_bytes = n * job.item
    fill_settings(job, settings, rows)
    top_k_settings(job, top_k, rows)
    cdef Py_ssize_t r
    for r in range(rows if job.top_k_step else 1):
        if 0 < job.top_k[r] < n:
            job.needs.top_k = 1
            break
    cdef const double *top_p = job.settings[<int> S_TOP_P]
    for r in range(rows if job.steps[<int> S_TOP_P] else 1):
        if top_p[r] < 1.0:
            job.needs.top_p = 1
            break


def sample(cnp.ndarray x, tuple settings, cnp.ndarray top_k, rng, cnp.ndarray mask, cnp.ndarray bias,
           cnp.ndarray history, int logprobs, Py_ssize_t top_n, tuple batch_shape, int num_threads):
    """One index per row of ``x``, a C-contiguous float32/float64 (rows, n)
    array, as an int64 array of ``rows`` entries; a row without one gets a
    negative SAMPLE_* code instead.  With ``logprobs`` (LOGPROBS_RAW or
    LOGPROBS_PROCESSED) returns (indices, logprob (rows,), top_tokens
    (rows, top_n), top_logprobs (rows, top_n)), the log-probabilities in
    float64.

    ``settings``: float64 arrays of temperature, top_p, min_p, repetition,
    presence and frequency penalties, each one value for every row or one
    per row; ``top_k``: int64 likewise.  Off: top_k 0, top_p >= 1, min_p 0,
    repetition 1, presence and frequency 0.  ``rng``: a Generator, a
    sequence of one per row, or a seed for numpy.random.default_rng (one
    uniform number per row with T > 0).  ``mask`` (bool) and ``bias`` (x's
    dtype), or None: views (views.pxi) over the rows, whose row index has
    ``batch_shape``, entries of a row at any stride, read in place, never
    expanded.  ``history``: C-contiguous int64 (rows, L) or None.
    ``num_threads`` <= 0 means the OpenMP default.  Arguments are validated
    by fastsoftmax._sample."""
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef sample_job job
    start_job(&job, x, n, settings, top_k, rows)
    job.loop.run = sample_run
    cdef row_view mask_view, bias_view
    if mask is not None and rows > 0:
        fill_view(&mask_view, mask, batch_shape, n, False)
        job.mask = &mask_view
    if bias is not None and rows > 0:
        fill_view(&bias_view, bias, batch_shape, n, False, cnp.PyArray_TYPE(x))
        job.bias = &bias_view
    cdef Py_ssize_t r, i
    if history is not None:
        if (cnp.PyArray_TYPE(history) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(history)
                or cnp.PyArray_NDIM(history) != 2 or cnp.PyArray_DIM(history, 0) != rows):
            raise ValueError("sample(): history must be C-contiguous int64 of shape (rows, L)")
        job.history, job.history_len = <const int64_t *> cnp.PyArray_DATA(history), cnp.PyArray_DIM(history, 1)
        for i in range(S_REPETITION, S_COUNT):
            for r in range(rows if job.steps[i] else 1):
                if job.settings[i][r] != (1.0 if i == S_REPETITION else 0.0):
                    job.needs.penalties = job.history_len > 0
    job.needs.edited = job.mask != NULL or job.bias != NULL or job.needs.penalties
    cdef cnp.npy_intp count = rows
    cdef cnp.ndarray uniforms = cnp.PyArray_EMPTY(1, &count, cnp.NPY_FLOAT64, 0)
    draw_uniforms(rng, job.settings[<int> S_TEMPERATURE], job.steps[<int> S_TEMPERATURE], rows, 1,
                  <double *> cnp.PyArray_DATA(uniforms))
    job.uniforms, job.per_row = <const double *> cnp.PyArray_DATA(uniforms), 1
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &count, cnp.NPY_INT64, 0)
    job.out = <int64_t *> cnp.PyArray_DATA(out)
    cdef cnp.npy_intp dims[2]
    dims[0], dims[1] = rows, top_n
    cdef cnp.ndarray logprob = None, top_tokens = None, top_logprobs = None
    if logprobs != FS_LOGPROBS_NONE:
        job.logprobs, job.needs.top_n = logprobs, top_n
        logprob = cnp.PyArray_EMPTY(1, &count, cnp.NPY_FLOAT64, 0)
        top_tokens = cnp.PyArray_EMPTY(2, dims, cnp.NPY_INT64, 0)
        top_logprobs = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT64, 0)
        job.logprob = <double *> cnp.PyArray_DATA(logprob)
        job.top_tokens = <int64_t *> cnp.PyArray_DATA(top_tokens)
        job.top_logprobs = <double *> cnp.PyArray_DATA(top_logprobs)
    cdef int threads = call_threads(num_threads, rows * n)
    run_or_raise(&job.loop, rows, threads, f"sample(): no memory for the sampler of each thread")
    if threads <= 1 and rows > 0 and job.out[0] == FS_SAMPLE_NO_MEMORY:
        raise MemoryError(f"sample(): no memory for the scratch rows of {n} entries")
    if logprobs == FS_LOGPROBS_NONE:
        return out
    return out, logprob, top_tokens, top_logprobs


def verify_draft(cnp.ndarray x, cnp.ndarray draft, cnp.ndarray q, tuple settings, cnp.ndarray top_k, rng,
                 int num_threads):
    """Rejection sampling of drafts: ``x`` the target logits, C-contiguous
    float32/float64 (requests * (k + 1), n); ``draft`` C-contiguous int64
    (requests, k); ``q`` None or C-contiguous of x's dtype (requests * k, n).
    ``settings``, ``top_k`` as in sample(), one value or one per request.
    Returns (tokens (requests, k + 1) int64, status (requests,) int64): the
    number of drafts accepted, or a negative SAMPLE_* code.  Arguments are
    validated by fastsoftmax._sample."""
    cdef Py_ssize_t requests = cnp.PyArray_DIM(draft, 0), k = cnp.PyArray_DIM(draft, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(x, 1)
    if (cnp.PyArray_TYPE(draft) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(draft)
            or cnp.PyArray_DIM(x, 0) != requests * (k + 1)):
        raise ValueError("verify_draft(): draft must be C-contiguous int64 (requests, k) "
                         "beside (requests * (k + 1), n)")
    if q is not None and (cnp.PyArray_TYPE(q) != cnp.PyArray_TYPE(x) or not cnp.PyArray_IS_C_CONTIGUOUS(q)
                          or cnp.PyArray_DIM(q, 0) != requests * k or cnp.PyArray_DIM(q, 1) != n):
        raise ValueError("verify_draft(): q must be C-contiguous (requests * k, n) of x's dtype")
    cdef sample_job job
    start_job(&job, x, n, settings, top_k, requests)
    job.loop.run = verify_run
    job.needs.verify = 1
    job.k, job.draft = k, <const int64_t *> cnp.PyArray_DATA(draft)
    job.q = <const char *> cnp.PyArray_DATA(q) if q is not None else NULL
    cdef cnp.npy_intp dims[2]
    dims[0], dims[1] = requests, k + 1
    cdef cnp.ndarray uniforms = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT64, 0)
    cdef cnp.ndarray tokens = cnp.PyArray_EMPTY(2, dims, cnp.NPY_INT64, 0)
    draw_uniforms(rng, job.settings[<int> S_TEMPERATURE], job.steps[<int> S_TEMPERATURE], requests, k + 1,
                  <double *> cnp.PyArray_DATA(uniforms))
    job.uniforms, job.per_row = <const double *> cnp.PyArray_DATA(uniforms), k + 1
    job.tokens = <int64_t *> cnp.PyArray_DATA(tokens)
    cdef cnp.ndarray status = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INT64, 0)
    job.out = <int64_t *> cnp.PyArray_DATA(status)
    cdef int threads = call_threads(num_threads, requests * (k + 1) * n)
    run_or_raise(&job.loop, requests, threads, f"verify_draft(): no memory for the sampler of each thread")
    if threads <= 1 and requests > 0 and job.out[0] == FS_SAMPLE_NO_MEMORY:
        raise MemoryError(f"verify_draft(): no memory for the scratch rows of {n} entries")
    return tokens, status
