"""Fit the exp polynomials used by the kernels (csrc/vexp.h) and check them.

Five fits:
  * float32, degree 5 on |t| <= ln2/2 (every float32 variant);
  * float64, degree 11 on |t| <= ln2/2 (float64 without a table);
  * float64, degree 6 on |t| <= ln2/32 for the table-driven exp (float64 with
    AVX-512, where one instruction reads a 16-entry table of 2**(j/16)),
    interpolated at Chebyshev nodes in 60-digit decimal arithmetic, which
    float64 least squares cannot resolve; the table itself is printed too;
  * float32, degree 3 on |t| <= ln2/16 and ln2/32 for the table-driven
    float32 exp (AVX2: 8 entries 2**(j/8); AVX-512: 16 entries 2**(j/16),
    each read by one vpermps), with the tables' mantissa bits.

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


def fit(degree, dtype, iterations=300, half=HALF_LN2):
    t = np.cos(np.linspace(0, np.pi, 4001)) * half              # Chebyshev-spaced grid
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


def horner_error(coef, dtype, half=HALF_LN2):
    t = np.linspace(-half, half, 200001).astype(dtype)
    q = np.full_like(t, coef[-1])
    for c in coef[-2::-1]:
        q = q * t + c
    p = dtype(1) + t * q
    exact = np.exp(t.astype(np.float64))
    return float(np.max(np.abs(p.astype(np.float64) - exact) / exact))


def table_fit(degree=6, digits=60):
    """q of p(t) = 1 + t q(t) interpolating exp at Chebyshev nodes of
    |t| <= ln2/32, and the max relative error of the rounded coefficients."""
    import math
    from decimal import Decimal, getcontext
    getcontext().prec = digits
    half = Decimal(2).ln() / 32
    m = degree                                   # q has degree - 1, m nodes
    nodes = [half * Decimal(math.cos((2 * k + 1) * math.pi / (2 * m))) for k in range(m)]
    a = [[t ** j for j in range(m)] for t in nodes]
    b = [(t.exp() - 1) / t for t in nodes]
    for i in range(m):                           # Gaussian elimination, partial pivoting
        piv = max(range(i, m), key=lambda r: abs(a[r][i]))
        a[i], a[piv], b[i], b[piv] = a[piv], a[i], b[piv], b[i]
        for r in range(i + 1, m):
            f = a[r][i] / a[i][i]
            a[r] = [x - f * y for x, y in zip(a[r], a[i])]
            b[r] -= f * b[i]
    q = [Decimal(0)] * m
    for i in reversed(range(m)):
        q[i] = (b[i] - sum(a[i][c] * q[c] for c in range(i + 1, m))) / a[i][i]
    coef = [float(c) for c in q]
    worst = Decimal(0)
    for k in range(-1000, 1001):
        t = half * Decimal(k) / 1000
        acc = Decimal(0)
        for c in reversed(coef):
            acc = acc * t + Decimal(c)
        worst = max(worst, abs(1 + t * acc - t.exp()) / t.exp())
    table = [float((Decimal(2) ** (Decimal(j) / 16))) for j in range(16)]
    return coef, float(worst), table


if __name__ == "__main__":
    coef, err, table = table_fit()
    print("float64 table-driven degree 6: q highest degree first:")
    print("   ", ", ".join(c.hex() for c in coef[::-1]))
    print(f"    max relative error (exact arithmetic, rounded coefficients): {err:.2e}")
    print("    table 2**(j/16):", ", ".join(t.hex() for t in table))
    for degree, dtype in ((5, np.float32), (11, np.float64)):
        coef = fit(degree, dtype)
        print(f"{np.dtype(dtype).name} degree {degree}: p(t) = 1 + t*q(t), q highest degree first:")
        print("   ", ", ".join(float(c).hex() for c in coef[::-1]))
        print(f"    max relative error, evaluated in {np.dtype(dtype).name}: {horner_error(coef, dtype):.2e}")
    # float32 table-driven, degree 3: 2**(j/8) (AVX2, one vpermps of 8
    # entries) and 2**(j/16) (AVX-512, one vpermps of 16), |t| <= ln2 / (2N)
    for entries in (8, 16):
        half = HALF_LN2 / entries
        coef = fit(3, np.float32, half=half)
        print(f"float32 table-driven ({entries} entries) degree 3: q highest degree first:")
        print("   ", ", ".join(float(c).hex() for c in coef[::-1]))
        print(f"    max relative error, evaluated in float32: {horner_error(coef, np.float32, half):.2e}")
        table = [float(np.float32(2.0 ** (j / entries))) for j in range(entries)]
        print(f"    table 2**(j/{entries}) as float32 bits:",
              ", ".join(hex(int(np.float32(t).view(np.uint32)) & 0x7FFFFF) for t in table))
