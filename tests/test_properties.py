"""Hypothesis: random shapes, values (inf, NaN, huge, subnormal, ties) and
temperatures, compared with the pure-Python reference."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from util import FUNCTIONS, assert_close

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def arrays_of(dtype):
    info = np.finfo(dtype)
    special = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, float(info.max), -float(info.max),
                               float(info.smallest_subnormal), 1.0, -1.0])
    finite = st.floats(-50, 50, width=np.dtype(dtype).itemsize * 8)
    elements = st.one_of(finite, finite, finite, special)
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)
    return hnp.arrays(dtype, shapes, elements=elements)


temperatures = st.one_of(st.just(1.0), st.just(0.0), st.just(math.inf),
                         st.floats(1e-3, 1e3), st.floats(1e-300, 1e300))


@st.composite
def cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = draw(arrays_of(dtype))
    if x.ndim == 0:
        axis = draw(st.sampled_from([-1, None]))
    else:
        axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1),
                              st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim,
                                       unique=True).map(tuple)))
    return dtype, x, axis, draw(temperatures)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), name=st.sampled_from(sorted(FUNCTIONS)))
def test_matches_reference(case, name):
    dtype, x, axis, t = case
    fast, ref = FUNCTIONS[name]
    x_before = x.copy()
    assert_close(name, fast(x, axis=axis, temperature=t), ref(x, axis=axis, temperature=t), dtype,
                 f"shape={x.shape} axis={axis} T={t}")
    np.testing.assert_array_equal(x, x_before)
