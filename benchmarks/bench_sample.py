"""Speed of fastsoftmax.sample and verify_draft, one thread, against the usual recipes.

    taskset -c 0 python benchmarks/bench_sample.py [--repeats 41] [--case filters,serving,verify,overhead]

Cases of issue 18 (--case serving, verify, overhead):
  * serving: (64, 128256) float32 logits, a history of 512 token ids per row,
    repetition 1.1, presence 0.5, frequency 0.3, top_k=50, top_p=0.9,
    logprobs="processed", top_logprobs=5: fastsoftmax.sample against a
    PyTorch pipeline written as vLLM's CPU sampler does it (bin counts by
    scatter_add, penalties by torch.where, a full sort for top-k/top-p,
    softmax, exponential-race sampling, log_softmax + topk for the
    log-probabilities; its one-thread sort of all 128256 entries of every
    row is most of its time; "torch (topk first)", with topk before the
    softmax, for information) and the NumPy recipe (bincount, argpartition, sort,
    cumsum, inverse CDF); goals: >= 5x PyTorch, >= 10x NumPy;
  * verify: verify_draft on B=16 requests of K=5 drafts over V=32000 with
    draft probabilities (target (16, 6, 32000), draft_probs (16, 5, 32000))
    against a vectorised PyTorch implementation of the same rule; goal >= 3x;
  * overhead: a (1, 1000) float32 row, sample with a Generator against
    softmax on the same row; goal <= 3x.

Cases (issue 9), on (64, 50257) float32 logits (a batch of 64 rows of a
GPT-2-sized vocabulary):
  * top_k=50, top_p=0.9: fastsoftmax.sample against a vectorised NumPy
    implementation (argpartition, softmax, sort, cumsum, inverse-CDF draw)
    and PyTorch (topk, softmax, sort, cumsum, multinomial) when installed;
    goals: >= 5x NumPy, >= 2x PyTorch;
  * plain temperature sampling (T = 0.8, no filters): fastsoftmax.sample
    against fastsoftmax.softmax on the same logits; goal: <= 1.5x;
  * for information: top_p alone, min_p alone, greedy (T = 0).
Every function of a case runs in turn within each repeat (interleaved, so
that a noisy machine slows them alike); the figures are medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fastsoftmax as fs  # noqa: E402

try:
    import torch
except ImportError:  # optional
    torch = None

ROWS, VOCAB = 64, 50257
TOP_K, TOP_P = 50, 0.9


def numpy_top_k_top_p(x, k, p, rng):
    """The usual vectorised NumPy recipe."""
    idx = np.argpartition(x, -k, axis=-1)[:, -k:]
    vals = np.take_along_axis(x, idx, -1)
    e = np.exp(vals - vals.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    order = np.argsort(-probs, axis=-1)
    sorted_p = np.take_along_axis(probs, order, -1)
    before = np.cumsum(sorted_p, -1) - sorted_p
    sorted_p = np.where(before < p, sorted_p, 0)
    cdf = np.cumsum(sorted_p, -1)
    u = rng.random((x.shape[0], 1)) * cdf[:, -1:]
    j = np.minimum((cdf <= u).sum(-1), k - 1)
    return np.take_along_axis(idx, np.take_along_axis(order, j[:, None], -1), -1)[:, 0]


def numpy_serving(x, history, rep, pres, freq, k, p, n_top, rng):
    """The vectorised NumPy recipe of a serving step: penalties from bin
    counts, top-k by argpartition, top-p by sort and cumsum, inverse-CDF
    draw, processed log-probabilities and the top ones."""
    rows, vocab = x.shape
    valid = history >= 0
    flat = (np.arange(rows)[:, None] * vocab + history)[valid]
    counts = np.bincount(flat, minlength=rows * vocab).reshape(rows, vocab)
    seen = counts > 0
    z = np.where(seen, np.where(x > 0, x / rep, x * rep), x) - pres * seen - freq * counts
    idx = np.argpartition(z, -k, axis=-1)[:, -k:]
    vals = np.take_along_axis(z, idx, -1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    idx = np.take_along_axis(idx, order, -1)
    vals = np.take_along_axis(vals, order, -1)
    e = np.exp(vals - vals[:, :1])
    probs = e / e.sum(-1, keepdims=True)
    before = np.cumsum(probs, -1) - probs
    probs = np.where(before < p, probs, 0)
    probs /= probs.sum(-1, keepdims=True)
    cdf = np.cumsum(probs, -1)
    j = np.minimum((cdf <= rng.random((rows, 1))).sum(-1), k - 1)
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    tokens = idx[np.arange(rows), j]
    return tokens, logp[np.arange(rows), j], idx[:, :n_top], logp[:, :n_top]


def torch_penalties(x, history, rep, pres, freq):
    """vLLM's penalties: token counts by scatter_add over the history (-1
    padding goes to a spare bin), then repetition, frequency and presence."""
    rows, vocab = x.shape
    counts = torch.zeros((rows, vocab + 1), dtype=torch.int64)
    counts.scatter_add_(1, torch.where(history >= 0, history, vocab), torch.ones_like(history))
    counts = counts[:, :vocab]
    seen = counts > 0
    logits = torch.where(seen, torch.where(x > 0, x / rep, x * rep), x)
    logits -= freq * counts
    logits -= pres * seen
    return logits


def torch_serving(x, history, rep, pres, freq, k, p, n_top, generator):
    """A serving step as vLLM's CPU sampler writes it (vllm/v1/sample):
    penalties from scatter_add bin counts, temperature, top-k/top-p by a
    sort of the whole row, softmax, the exponential race for the draw, and
    log_softmax + topk + gather for the processed log-probabilities."""
    rows, vocab = x.shape
    logits = torch_penalties(x, history, rep, pres, freq)
    logits_sort, logits_idx = logits.sort(dim=-1, descending=False)
    top_k_mask = logits_sort.gather(1, torch.full((rows, 1), vocab - k))
    logits_sort.masked_fill_(logits_sort < top_k_mask, -float("inf"))
    probs_sort = logits_sort.softmax(dim=-1)
    probs_sum = torch.cumsum(probs_sort, dim=-1, out=probs_sort)
    top_p_mask = probs_sum <= 1 - p
    top_p_mask[:, -1] = False
    logits_sort.masked_fill_(top_p_mask, -float("inf"))
    logits = logits_sort.scatter(dim=-1, index=logits_idx, src=logits_sort)
    probs = logits.softmax(dim=-1, dtype=torch.float32)
    q = torch.empty_like(probs).exponential_(generator=generator)
    tokens = probs.div_(q).argmax(dim=-1)
    logprobs = logits.log_softmax(dim=-1)
    top_logprobs, top_tokens = logprobs.topk(n_top, dim=-1)
    return tokens, logprobs.gather(-1, tokens[:, None])[:, 0], top_tokens, top_logprobs


def torch_serving_topk_first(x, history, rep, pres, freq, k, p, n_top, generator):
    """The same step with PyTorch's best tools, for information: the same
    penalties, then topk(k) before the softmax, so only k entries are
    sorted."""
    logits = torch_penalties(x, history, rep, pres, freq)
    vals, idx = logits.topk(k, dim=-1)                        # sorted, descending
    probs = vals.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs
    vals = vals.masked_fill(before >= p, -float("inf"))
    logprobs = vals.log_softmax(dim=-1)
    j = torch.multinomial(logprobs.exp(), 1, generator=generator)
    return idx.gather(-1, j)[:, 0], logprobs.gather(-1, j)[:, 0], idx[:, :n_top], logprobs[:, :n_top]


def torch_verify(target, draft, q, generator):
    """Rejection sampling of drafts, vectorised as a PyTorch server does it:
    softmax of every position, acceptance by u < p / q, the residual
    max(0, p - q) of every position, a draw at the first rejection or the
    bonus position."""
    batch, positions, vocab = target.shape
    k = positions - 1
    p = target.softmax(dim=-1)
    p_draft = p[:, :k].gather(-1, draft[..., None])[..., 0]
    q_draft = q.gather(-1, draft[..., None])[..., 0]
    u = torch.rand((batch, k), generator=generator)
    accepted = u * q_draft < p_draft
    num_accepted = accepted.to(torch.int64).cumprod(dim=1).sum(dim=1)
    residual = (p[:, :k] - q).clamp_(min=0)
    residual = torch.cat([residual, p[:, k:]], dim=1)            # position k: the bonus token's distribution
    rows = torch.arange(batch)
    chosen = residual[rows, num_accepted]
    extra = torch.multinomial(chosen, 1, generator=generator)[:, 0]
    tokens = torch.full((batch, positions), -1, dtype=torch.int64)
    keep = torch.arange(k)[None, :] < num_accepted[:, None]
    tokens[:, :k] = torch.where(keep, draft, -1)
    tokens[rows, num_accepted] = extra
    return tokens, num_accepted


def torch_top_k_top_p(x, k, p, generator):
    """The usual PyTorch recipe."""
    vals, idx = torch.topk(x, k, dim=-1)
    probs = torch.softmax(vals, dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before >= p, 0.0)
    j = torch.multinomial(sorted_p, 1, generator=generator)
    return idx.gather(-1, order.gather(-1, j))


# On a shared machine a process loses the CPU now and then: by default the
# time counted is the CPU time of this thread (every function here runs on
# the calling thread), which leaves those gaps out; --wall counts wall time.
CLOCK = time.thread_time


def timed(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each function, interleaved."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()                                  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = CLOCK()
            fn()
            times[name].append(CLOCK() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def report(title: str, medians: dict, base: str, unit: str = "ms") -> None:
    print(title)
    scale = {"ms": 1e3, "us": 1e6}[unit]
    for name, t in medians.items():
        ratio = "" if name == base else f"   {t / medians[base]:6.2f}x {base}'s time"
        print(f"   {name:<34} {t * scale:8.3f} {unit}{ratio}")


SERVING_ROWS, SERVING_VOCAB, HISTORY = 64, 128256, 512
REPETITION, PRESENCE, FREQUENCY, TOP_LOGPROBS = 1.1, 0.5, 0.3, 5
VERIFY_B, VERIFY_K, VERIFY_V = 16, 5, 32000
VLLM = "torch (as vLLM's CPU sampler)"


def bench_filters(rng, repeats):
    """The cases of issue 9: top-k + top-p and plain temperature sampling."""
    x = (rng.standard_normal((ROWS, VOCAB)) * 3).astype(np.float32)
    print(f"\n({ROWS}, {VOCAB}) float32")
    fns = {
        "fastsoftmax.sample": lambda: fs.sample(x, top_k=TOP_K, top_p=TOP_P, rng=rng, num_threads=1),
        "numpy (argpartition+sort+cumsum)": lambda: numpy_top_k_top_p(x, TOP_K, TOP_P, rng),
    }
    if torch is not None:
        xt = torch.from_numpy(x)
        generator = torch.Generator().manual_seed(0)
        fns["torch (topk+sort+multinomial)"] = lambda: torch_top_k_top_p(xt, TOP_K, TOP_P, generator)
    m = timed(fns, repeats)
    report(f"\ntop_k={TOP_K}, top_p={TOP_P}", m, "fastsoftmax.sample")
    print(f"   -> {m['numpy (argpartition+sort+cumsum)'] / m['fastsoftmax.sample']:.1f}x faster than NumPy "
          "(goal >= 5x)")
    if torch is not None:
        print(f"   -> {m['torch (topk+sort+multinomial)'] / m['fastsoftmax.sample']:.1f}x faster than PyTorch "
              "(goal >= 2x)")

    m = timed({
        "fastsoftmax.softmax": lambda: fs.softmax(x, temperature=0.8, num_threads=1),
        "fastsoftmax.sample": lambda: fs.sample(x, temperature=0.8, rng=rng, num_threads=1),
    }, repeats)
    report("\nplain temperature sampling (T = 0.8, no filters)", m, "fastsoftmax.softmax")
    print(f"   -> sample costs {m['fastsoftmax.sample'] / m['fastsoftmax.softmax']:.2f}x softmax (goal <= 1.5x)")

    m = timed({
        "fastsoftmax.softmax": lambda: fs.softmax(x, num_threads=1),
        "sample(top_p=0.9)": lambda: fs.sample(x, top_p=TOP_P, rng=rng, num_threads=1),
        "sample(min_p=0.05)": lambda: fs.sample(x, min_p=0.05, rng=rng, num_threads=1),
        "sample(top_k=1000)": lambda: fs.sample(x, top_k=1000, rng=rng, num_threads=1),
        "sample(temperature=0)": lambda: fs.sample(x, temperature=0.0, num_threads=1),
    }, max(5, repeats // 4))
    report("\nother settings, for information", m, "fastsoftmax.softmax")


def bench_serving(rng, repeats):
    x = (rng.standard_normal((SERVING_ROWS, SERVING_VOCAB)) * 3).astype(np.float32)
    history = rng.integers(0, SERVING_VOCAB, (SERVING_ROWS, HISTORY))
    history[:, -40:] = -1                                    # padding
    kw = dict(history=history, repetition_penalty=REPETITION, presence_penalty=PRESENCE,
              frequency_penalty=FREQUENCY, top_k=TOP_K, top_p=TOP_P, logprobs="processed",
              top_logprobs=TOP_LOGPROBS, num_threads=1)
    fns = {
        "fastsoftmax.sample": lambda: fs.sample(x, rng=rng, **kw),
        "numpy recipe": lambda: numpy_serving(x, history, REPETITION, PRESENCE, FREQUENCY, TOP_K, TOP_P,
                                              TOP_LOGPROBS, rng),
    }
    if torch is not None:
        xt, ht = torch.from_numpy(x), torch.from_numpy(history)
        generator = torch.Generator().manual_seed(0)
        fns[VLLM] = lambda: torch_serving(xt, ht, REPETITION, PRESENCE, FREQUENCY, TOP_K, TOP_P, TOP_LOGPROBS,
                                          generator)
        fns["torch (topk first)"] = lambda: torch_serving_topk_first(xt, ht, REPETITION, PRESENCE, FREQUENCY, TOP_K,
                                                                     TOP_P, TOP_LOGPROBS, generator)
    m = timed(fns, repeats)
    report(f"\nserving step: ({SERVING_ROWS}, {SERVING_VOCAB}) float32, history {HISTORY}, penalties "
           f"{REPETITION}/{PRESENCE}/{FREQUENCY}, top_k={TOP_K}, top_p={TOP_P}, processed logprobs, "
           f"top {TOP_LOGPROBS}", m, "fastsoftmax.sample")
    print(f"   -> {m['numpy recipe'] / m['fastsoftmax.sample']:.1f}x faster than NumPy (goal >= 10x)")
    if torch is not None:
        print(f"   -> {m[VLLM] / m['fastsoftmax.sample']:.1f}x faster than PyTorch as vLLM writes it (goal >= 5x); "
              f"{m['torch (topk first)'] / m['fastsoftmax.sample']:.1f}x faster than PyTorch with topk first")


def bench_verify(rng, repeats):
    target = (rng.standard_normal((VERIFY_B, VERIFY_K + 1, VERIFY_V)) * 3).astype(np.float32)
    # a draft model close to the target (a real draft is), so that several drafts are accepted
    noise = rng.standard_normal((VERIFY_B, VERIFY_K, VERIFY_V)).astype(np.float32)
    q = fs.softmax(target[:, :VERIFY_K] + 0.5 * noise)
    q64 = q.astype(np.float64)
    draft = np.array([[rng.choice(VERIFY_V, p=q64[b, i] / q64[b, i].sum()) for i in range(VERIFY_K)]
                      for b in range(VERIFY_B)])
    fns = {"fastsoftmax.verify_draft": lambda: fs.verify_draft(target, draft, q, rng=rng, num_threads=1)}
    accepted = fs.verify_draft(target, draft, q, rng=1)[1]
    if torch is not None:
        tt, dt, qt = torch.from_numpy(target), torch.from_numpy(draft), torch.from_numpy(q)
        generator = torch.Generator().manual_seed(0)
        fns["torch (vectorised rule)"] = lambda: torch_verify(tt, dt, qt, generator)
    m = timed(fns, repeats)
    report(f"\nverify_draft: B={VERIFY_B}, K={VERIFY_K}, V={VERIFY_V} float32 with draft probabilities "
           f"(mean accepted {accepted.mean():.1f})", m, "fastsoftmax.verify_draft")
    if torch is not None:
        print(f"   -> {m['torch (vectorised rule)'] / m['fastsoftmax.verify_draft']:.1f}x faster than PyTorch "
              "(goal >= 3x)")


def bench_overhead(rng, repeats):
    x = rng.standard_normal((1, 1000)).astype(np.float32)
    generator = np.random.default_rng(0)
    calls = 200
    def many(fn):
        def run():
            for _ in range(calls):
                fn()
        return run
    m = timed({
        "fastsoftmax.softmax": many(lambda: fs.softmax(x)),
        "fastsoftmax.sample(rng=Generator)": many(lambda: fs.sample(x, rng=generator)),
        "sample(top_k=50, top_p=0.9)": many(lambda: fs.sample(x, top_k=50, top_p=0.9, rng=generator)),
    }, repeats)
    m = {name: t / calls for name, t in m.items()}
    report("\nper-call overhead: (1, 1000) float32", m, "fastsoftmax.softmax", unit="us")
    print(f"   -> sample costs {m['fastsoftmax.sample(rng=Generator)'] / m['fastsoftmax.softmax']:.2f}x softmax "
          "(goal <= 3x)")


CASES = {"filters": bench_filters, "serving": bench_serving, "verify": bench_verify, "overhead": bench_overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--case", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--wall", action="store_true", help="count wall time instead of this thread's CPU time")
    args = parser.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    if torch is not None:
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"fastsoftmax {fs.__version__} ({fs.build_info()['simd']}), one thread, "
          f"median of {args.repeats} interleaved repeats, {'wall' if args.wall else 'thread CPU'} time")
    for case in args.case.split(","):
        CASES[case](rng, args.repeats)


if __name__ == "__main__":
    main()
