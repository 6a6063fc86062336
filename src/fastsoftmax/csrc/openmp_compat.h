/* OpenMP runtime calls, with serial stand-ins when the compiler has no OpenMP
 * (setup.py then builds without -fopenmp and says so). */
#ifndef FASTSOFTMAX_OPENMP_COMPAT_H
#define FASTSOFTMAX_OPENMP_COMPAT_H
#ifdef _OPENMP
#include <omp.h>
#define FS_HAVE_OPENMP 1
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
#define FS_HAVE_OPENMP 0
#endif
#endif
