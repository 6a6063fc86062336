"""Build of the compiled part of fastsoftmax.

Needs GCC 12 or newer, or Clang: the kernels use their vector extensions.
MSVC (and so Windows) is not supported.

Probes the compiler before building and reports what it decided:
  * OpenMP (-fopenmp).  Without it the build still succeeds, every call runs
    on one thread, build_info()["openmp"] is False and the first call asking
    for num_threads > 1 warns.
  * Runtime SIMD dispatch (x86-64, GCC/Clang): kernels are compiled for
    AVX-512, AVX2+FMA and a portable baseline, and the CPU picks one at run
    time.  Elsewhere only the portable baseline is built.
No -march=native and no -ffast-math: the kernels rely on IEEE NaN/inf.

Environment switches (all optional):
  FASTSOFTMAX_DISABLE_OPENMP=1   build serial even if OpenMP is available
  FASTSOFTMAX_DISABLE_DISPATCH=1 portable baseline kernels only
  FASTSOFTMAX_SANITIZE=1         AddressSanitizer + UndefinedBehaviorSanitizer build
"""
import os
import shutil
import sys
import tempfile
import textwrap

import setuptools

# pyproject.toml's `license = "BSD-3-Clause"` (PEP 639) needs setuptools 77;
# an older one (reachable with --no-build-isolation) would fail later with a
# schema error that does not say so.
if int(setuptools.__version__.split(".")[0]) < 77:
    sys.exit(f"fastsoftmax needs setuptools >= 77 to build, found {setuptools.__version__}: "
             "pip install -U 'setuptools>=77' (or build without --no-build-isolation, "
             "which installs it by itself)")

import numpy  # noqa: E402
from Cython.Build import cythonize  # noqa: E402
from setuptools import Extension, setup  # noqa: E402
from setuptools.command.build_ext import build_ext  # noqa: E402

OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
""")

DISPATCH_PROBE = textwrap.dedent("""
    #if !defined(__x86_64__) && !defined(_M_X64)
    #error "runtime dispatch is only built for x86-64"
    #endif
    typedef float v16 __attribute__((vector_size(64)));
    #pragma GCC push_options
    #pragma GCC target("arch=x86-64-v4")
    static v16 twice(v16 a) { return a + a; }
    #pragma GCC pop_options
    int main(void) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) { v16 a = {1}; return (int)twice(a)[0] - 2; }
        return 0;
    }
""")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _report(message):
    sys.stderr.write(f"fastsoftmax build: {message}\n")


class BuildExt(build_ext):
    def _compiles(self, source, compile_args, link_args):
        tmp = tempfile.mkdtemp(prefix="fastsoftmax-probe-")
        try:
            path = os.path.join(tmp, "probe.c")
            with open(path, "w") as f:
                f.write(source)
            objects = self.compiler.compile([path], output_dir=tmp, extra_postargs=compile_args)
            self.compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_args)
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _openmp_flags(self):
        if _env_flag("FASTSOFTMAX_DISABLE_OPENMP"):
            _report("OpenMP disabled by FASTSOFTMAX_DISABLE_OPENMP; kernels run on one thread")
            return [], []
        if sys.platform == "darwin":
            candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
        else:
            candidates = [(["-fopenmp"], ["-fopenmp"])]
        for compile_args, link_args in candidates:
            if self._compiles(OPENMP_PROBE, compile_args, link_args):
                _report(f"OpenMP enabled ({' '.join(compile_args)})")
                return compile_args, link_args
        _report("WARNING: the compiler has no usable OpenMP; building serial kernels "
                "(num_threads has no effect). Install an OpenMP runtime (e.g. libgomp, libomp) for threads.")
        return [], []

    def _dispatch_macros(self):
        if _env_flag("FASTSOFTMAX_DISABLE_DISPATCH"):
            _report("SIMD dispatch off; portable baseline kernels only")
            return []
        if self._compiles(DISPATCH_PROBE, [], []):
            _report("SIMD dispatch on (AVX-512 / AVX2+FMA / baseline, chosen at run time)")
            return [("FASTSOFTMAX_X86_DISPATCH", "1")]
        _report("no x86-64 SIMD dispatch for this compiler/platform; portable baseline kernels only")
        return []

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            raise SystemExit("fastsoftmax: the kernels need GCC 12 or newer, or Clang (their vector "
                             "extensions); MSVC is not supported, and so neither is Windows")
        omp_compile, omp_link = self._openmp_flags()
        macros = self._dispatch_macros()
        # -ffp-contract=fast: allow FMA; the kernels are written to be exact
        # either way.  -fno-math-errno: log/exp need not set errno.  -g0: no
        # debug information (most of the extension's size otherwise).
        opt = ["-O3", "-g0", "-ffp-contract=fast", "-fno-math-errno", "-Wno-psabi"]
        link = []
        if _env_flag("FASTSOFTMAX_SANITIZE"):
            san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
            opt = ["-O1", "-g", "-ffp-contract=fast", "-Wno-psabi"] + san
            link = san
            _report("sanitizer build (ASan + UBSan)")
        for ext in self.extensions:
            ext.extra_compile_args = opt + omp_compile + list(ext.extra_compile_args)
            ext.extra_link_args = link + omp_link + list(ext.extra_link_args)
            ext.define_macros = list(ext.define_macros) + macros
        super().build_extensions()


extensions = [
    Extension(
        "fastsoftmax._rows",
        # the kernels: core.c once, one file per instruction set (the x86
        # ones compile to nothing without FASTSOFTMAX_X86_DISPATCH), sampling
        sources=["src/fastsoftmax/_rows.pyx"] + [
            f"src/fastsoftmax/csrc/{name}.c"
            for name in ("core", "isa_baseline", "isa_avx2", "isa_avx512", "sample_kernels")],
        include_dirs=["src/fastsoftmax/csrc", numpy.get_include()],
        # Built against NumPy 2, runs on NumPy >= 1.25 (the oldest pyproject.toml allows).
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                       ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
