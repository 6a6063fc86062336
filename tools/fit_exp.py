"""Fit the exp polynomials used by the kernels (csrc/vexp.h) and check them.

exp(t) on |t| <= ln2/2 is approximated by p(t) = 1 + t*q(t): p(0) == 1
exactly, so a row maximum's own term is exactly 1.  q minimises the maximum
*relative* error (Lawson's iteratively reweighted least squares, which
converges to the minimax fit), then its coefficients are rounded to the
kernel dtype and the rounded polynomial is checked in that dtype with
Horner's rule, as the kernels evaluate it.

    python tools/fit_exp.py            # prints coefficients and errors
"""
import numpy as np

HALF_LN2 = np.log(2.0) / 2


def fit(degree, dtype, iterations=300):
    t = np.cos(np.linspace(0, np.pi, 4001)) * HALF_LN2          # Chebyshev-spaced grid
    target = np.expm1(t) / t                                    # q(t) = (e^t - 1) / t
    target[~np.isfinite(target)] = 1.0
    basis = np.vander(t, degree, increasing=True)               # q has degree - 1
    weight = np.ones_like(t)
    for _ in range(iterations):
        # relative error of p = 1 + t q  is  t (q - target) / e^t
        scale = np.abs(t) / np.exp(t) + 1e-300
        w = np.sqrt(weight) * scale
        coef = np.linalg.lstsq(basis * w[:, None], target * w, rcond=None)[0]
        err = np.abs((basis @ coef - target) * scale)
        weight *= err / err.max() + 1e-12
        weight /= weight.sum()
    return coef.astype(dtype)                                   # q's coefficients, lowest first


def horner_error(coef, dtype):
    t = np.linspace(-HALF_LN2, HALF_LN2, 200001).astype(dtype)
    q = np.full_like(t, coef[-1])
    for c in coef[-2::-1]:
        q = q * t + c
    p = dtype(1) + t * q
    exact = np.exp(t.astype(np.float64))
    return float(np.max(np.abs(p.astype(np.float64) - exact) / exact))


if __name__ == "__main__":
    for degree, dtype in ((5, np.float32), (11, np.float64)):
        coef = fit(degree, dtype)
        print(f"{np.dtype(dtype).name} degree {degree}: p(t) = 1 + t*q(t), q highest degree first:")
        print("   ", ", ".join(float(c).hex() for c in coef[::-1]))
        print(f"    max relative error, evaluated in {np.dtype(dtype).name}: {horner_error(coef, dtype):.2e}")
