# The one loop of the compiled layer, and the one thread policy.
#
# Every job (rows, columns, pieces of long rows, masked rows, backward, loss
# rows, weighted rows, 16-bit blocks, sampled rows) is a list of `items`
# (rows, bands of columns, pieces...) handed to `run_items`, which runs them
# in blocks on this thread or on OpenMP threads, each thread with its own
# scratch.  Items never share output, and each item is computed the same way
# whichever thread runs it, so results do not depend on the thread count.

# Below this many elements a call stays on the calling thread: starting a
# parallel region costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_ELEMENTS = 1 << 15
# Work units per thread: enough to even out uneven items and a noisy machine.
cdef Py_ssize_t UNITS_PER_THREAD = 4
# Outputs at least this large are written with non-temporal stores: they do
# not fit the caches anyway, and this saves reading each line before writing.
cdef Py_ssize_t STREAM_BYTES = 8 << 20

# omp_get_num_procs() asks the kernel each time; the answer does not change.
cdef int NUM_PROCS = omp_get_num_procs() if FS_HAVE_OPENMP else 1
# A cap on num_threads far above any machine; keeps huge Python ints out of C ints.
MAX_THREADS = 1 << 16

# GNU libgomp's thread pool does not survive fork(): a forked child that
# enters a parallel region hangs.  A child therefore runs every call on its
# own thread (no OpenMP region at all: run_items never opens one for one
# thread).
cdef bint FORKED_CHILD = False


def _after_fork_in_child():
    global FORKED_CHILD
    FORKED_CHILD = True


os.register_at_fork(after_in_child=_after_fork_in_child)


cdef int thread_count(int num_threads) noexcept:
    """Threads for a call that asks for ``num_threads`` (<= 0: the OpenMP default)."""
    if FORKED_CHILD or not FS_HAVE_OPENMP:
        return 1
    cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
    return max(1, min(threads, NUM_PROCS))


cdef int call_threads(int num_threads, Py_ssize_t elements) noexcept:
    """The thread policy: one thread for a call of fewer than
    MIN_PARALLEL_ELEMENTS elements, else thread_count.  run_items further
    caps it at the number of work units."""
    return 1 if elements < MIN_PARALLEL_ELEMENTS else thread_count(num_threads)


cdef inline bint split_long_rows(Py_ssize_t rows, Py_ssize_t n, int threads) noexcept nogil:
    """Whether rows go to the threads in pieces rather than whole: when they
    are long (beyond the L2 cache) and too few to keep every thread busy:
    fewer than UNITS_PER_THREAD per thread, or fewer than one block of
    ROW_TILE rows per thread (the row jobs hand out rows in multiples of
    ROW_TILE, forward.pxi: 8 long rows on 2 threads were one block, all on
    one thread)."""
    return threads > 1 and n > FS_LONG_ROW and rows < max(UNITS_PER_THREAD, ROW_TILE) * threads


# A job: its item function and what it needs.  Concrete jobs are structs
# whose first member is a loop_job, so run_items can hand them back to
# their item function.
ctypedef struct loop_job:
    # items [start, stop), with this thread's scratch (NULL if none asked)
    void (*run)(const loop_job *job, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil
    # frees what `run` left in a thread's scratch (or NULL)
    void (*release)(const loop_job *job, char *scratch) noexcept nogil
    Py_ssize_t scratch_bytes      # per thread; 0: none
    bint zero_scratch             # the scratch starts zeroed
    Py_ssize_t align              # blocks of items are multiples of this (>= 1)


cdef inline char *new_scratch(const loop_job *job) noexcept nogil:
    if job.scratch_bytes <= 0:
        return NULL
    if job.zero_scratch:
        return <char *> calloc(job.scratch_bytes, 1)
    return <char *> malloc(job.scratch_bytes)


cdef int run_items(const loop_job *job, Py_ssize_t items, int threads) noexcept nogil:
    """Run ``items`` items of ``job`` on up to ``threads`` threads: on this
    thread in one call for one thread, else in blocks of about
    items / (UNITS_PER_THREAD * threads), a multiple of job.align (kernels
    that group rows in tiles see the same tiles on any split).  Returns -1
    when a thread could not get its scratch (its items were not run), else 0."""
    cdef Py_ssize_t block, units, u, start
    cdef char *scratch = NULL
    cdef int missing = 0
    if items <= 0:
        return 0
    if threads <= 1 and job.scratch_bytes <= 0:
        job.run(job, 0, items, NULL)     # the common small call: nothing to set up
        return 0
    if threads > 1:
        block = items // (UNITS_PER_THREAD * threads)
        block = max(job.align, (block + job.align - 1) // job.align * job.align)
        units = (items + block - 1) // block
        threads = <int> min(<Py_ssize_t> threads, units)
    if threads <= 1:
        if job.scratch_bytes > 0:
            scratch = new_scratch(job)
            if scratch == NULL:
                return -1
        job.run(job, 0, items, scratch)
        if scratch != NULL and job.release != NULL:
            job.release(job, scratch)
        free(scratch)
        return 0
    with parallel(num_threads=threads):
        scratch = new_scratch(job)
        for u in prange(units, schedule="dynamic"):
            if job.scratch_bytes > 0 and scratch == NULL:
                missing += 1      # a reduction: no thread's failure is lost
            else:
                start = u * block
                job.run(job, start, min(start + block, items), scratch)
        if scratch != NULL and job.release != NULL:
            job.release(job, scratch)
        free(scratch)
    return -1 if missing else 0


cdef int run_or_raise(const loop_job *job, Py_ssize_t items, int threads, str message) except -1:
    """run_items without the GIL; MemoryError(message) when scratch was missing."""
    cdef int status
    with nogil:
        status = run_items(job, items, threads)
    if status != 0:
        raise MemoryError(message)
    return 0
