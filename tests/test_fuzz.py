"""Fuzzing against the reference: random shapes, strides (views, transposes,
negative steps, offsets), dtypes (float16/32/64, ints, bool, byte-swapped)
and values (subnormals, +-0, +-inf, NaN, values near the dtype's max), every
function, axis, temperature and out= mode.

A short run is part of the test suite; the long run is
``python tools/fuzz.py --minutes 10`` (see that script).
"""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from util import FUNCTIONS, assert_close

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

DTYPES = ["float32", "float64", "float16", ">f4", ">f8", "int32", "int8", "uint16", "bool"]


def _values(dtype):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return st.booleans()
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return st.integers(int(info.min), int(info.max))
    info = np.finfo(dt)
    special = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, float(info.max), -float(info.max),
                               float(info.max) / 2, float(info.smallest_subnormal), -float(info.smallest_subnormal),
                               float(info.tiny), 1.0])
    width = dt.itemsize * 8
    return st.one_of(st.floats(-30, 30, width=width), st.floats(-30, 30, width=width),
                     st.floats(allow_nan=True, allow_infinity=True, width=width), special)


@st.composite
def fuzz_cases(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))
    base = draw(hnp.arrays(np.dtype(dtype), shape, elements=_values(dtype)))
    x = base
    # a random view: reversed / strided axes or a transpose, over a bigger buffer
    if x.ndim:
        step = draw(st.sampled_from([1, 1, 2, -1, -2]))
        axis = draw(st.integers(0, x.ndim - 1))
        big_shape = list(x.shape)
        big_shape[axis] = x.shape[axis] * abs(step)
        big = np.zeros(big_shape, dtype=x.dtype)
        index = [slice(None)] * x.ndim
        index[axis] = slice(None, None, step) if step > 0 else slice(None, None, step)
        view = big[tuple(index)]
        if view.shape == x.shape:
            view[...] = x
            x = view
        if draw(st.booleans()) and x.ndim >= 2:
            x = np.ascontiguousarray(np.swapaxes(x, 0, -1)).swapaxes(0, -1)
    if x.ndim == 0:
        axis = draw(st.sampled_from([-1, None]))
    else:
        axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1),
                              st.lists(st.integers(0, x.ndim - 1), min_size=0, max_size=x.ndim,
                                       unique=True).map(tuple)))
    t = draw(st.one_of(st.just(1.0), st.just(0.0), st.just(math.inf), st.floats(1e-3, 1e3),
                       st.floats(min_value=5e-324, max_value=1.7e308)))
    name = draw(st.sampled_from(sorted(FUNCTIONS)))
    out_mode = draw(st.sampled_from(["new", "out", "inplace"]))
    threads = draw(st.sampled_from([None, 1, 2]))
    return name, x, axis, t, out_mode, threads


def check(case):
    name, x, axis, t, out_mode, threads = case
    fast, ref = FUNCTIONS[name]
    x_before = np.array(x, copy=True)
    want = ref(x_before, axis=axis, temperature=t)
    context = f"dtype={x.dtype.str} shape={x.shape} strides={x.strides} axis={axis} T={t} out={out_mode}"
    result_dtype = np.asarray(want).dtype
    if out_mode == "new" or (out_mode == "inplace" and (name == "logsumexp" or x.dtype != result_dtype)):
        got = fast(x, axis=axis, temperature=t, num_threads=threads)
        np.testing.assert_array_equal(x, x_before, err_msg=f"input modified: {context}")
    elif out_mode == "out":
        out = np.full(np.shape(want), 123, dtype=result_dtype)
        got = fast(x, axis=axis, temperature=t, out=out, num_threads=threads)
        assert got is out, context
    else:
        got = fast(x, axis=axis, temperature=t, out=x, num_threads=threads)
        assert got is x, context
    # logsumexp = max + T * log(S) cancels when both terms are huge: the error
    # then scales with T * log(S), not with the result.
    scale = 1.0
    if name == "logsumexp" and 0 < t < math.inf and x.size:
        scale = t * math.log(max(2, x.size))
    if result_dtype == np.float16:
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=3e-3,
                                   atol=1e-7, equal_nan=True, err_msg=context)
    else:
        assert_close(name, got, want, result_dtype, context, scale=scale)


FUZZ_EXAMPLES = int(os.environ.get("FASTSOFTMAX_FUZZ_EXAMPLES", "300"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(case=fuzz_cases())
def test_fuzz_against_reference(case):
    check(case)
