# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, autotestdict=False
"""The compiled layer: loops over rows and columns, and the threads that run them.

The per-row work lives in the C kernels (csrc/), reached through the kernel
table of each dtype (csrc/row_kernels.h).  This module only spreads that work
over OpenMP threads, and it does so through one loop (pyx/driver.pxi); the
results never depend on the split.  Its parts, one concern per file, in the
order they build on each other:

  pyx/kernels.pxi    the C declarations: kernel table, parameters, statistics
  pyx/driver.pxi     the thread policy and run_items, the one (serial or
                     parallel) loop, with per-thread scratch
  pyx/views.pxi      broadcast views of rows: where= and sampling masks
  pyx/pieces.pxi     rows in pieces: statistics per piece, merged in order
  pyx/results.pxi    result buffers (the cache of large results)
  pyx/forward.pxi    softmax, log_softmax, logsumexp; try_fast, the common call
  pyx/selection.pxi  where= selections; masked rows and the backward functions
  pyx/losses.pxi     cross_entropy, kl_div and contrastive rows
  pyx/blocks.pxi     rows split over Dask blocks
  pyx/weighted.pxi   SciPy's logsumexp(b=)
  pyx/staged.pxi     bfloat16 / float16 rows staged through float32
  pyx/sampling.pxi   fastsoftmax.sample
"""
import math
import os

import numpy as np

from cpython.pycapsule cimport PyCapsule_New
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset
from libc.math cimport NAN
cimport numpy as cnp

cnp.import_array()

include "pyx/kernels.pxi"

SOFTMAX = FS_SOFTMAX
LOG_SOFTMAX = FS_LOG_SOFTMAX
LOGSUMEXP = FS_LOGSUMEXP

fs_kernels_for(FS_F32)   # pick the instruction set once, under the GIL

include "pyx/driver.pxi"
include "pyx/views.pxi"
include "pyx/pieces.pxi"
include "pyx/results.pxi"
include "pyx/forward.pxi"
include "pyx/selection.pxi"
include "pyx/losses.pxi"
include "pyx/blocks.pxi"
include "pyx/weighted.pxi"
include "pyx/staged.pxi"
include "pyx/sampling.pxi"
include "pyx/variants.pxi"


def _use_isa(name):
    """Switch the kernels to an instruction-set variant ("avx512", "avx2",
    "baseline", "best" = the widest the CPU has, or "auto" = the one timed
    fastest at first use), for tests and benchmarks.  Not thread-safe: call
    it while no other thread is computing.  Raises ValueError for a variant
    this build or CPU does not have."""
    if fs_use_isa(name.encode("ascii")) != 0:
        raise ValueError(f"instruction set {name!r} is not available here; "
                         f"this build and CPU offer up to {simd_target()!r}")


def openmp_enabled():
    """Whether this build runs rows on OpenMP threads."""
    return bool(FS_HAVE_OPENMP)


def default_threads():
    """Threads a call uses when ``num_threads`` is None (the OpenMP default;
    1 without OpenMP or in a process forked from one that had threads)."""
    if FORKED_CHILD or not FS_HAVE_OPENMP:
        return 1
    return omp_get_max_threads()


def simd_target():
    """The instruction-set variant of the kernels in use."""
    return fs_simd_target().decode("ascii")
