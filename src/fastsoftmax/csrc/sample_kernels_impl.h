/* The sampling kernels for one dtype, included by sample_kernels.c once for
 * float and once for double, with FS_SR (the dtype), FS_SV / FS_SI (vectors
 * of it and of same-width ints) and FS_SK(name) (symbol suffixes) defined.
 * No include guard on purpose. */

#define FS_SLANES ((ptrdiff_t)(sizeof(FS_SV) / sizeof(FS_SR)))
/* Elements per step of the scans that look for rare entries: one test for
 * four vectors. */
#define FS_SSTEP (4 * FS_SLANES)

FS_INLINE FS_SV FS_SK(load)(const FS_SR *p) { FS_SV v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE FS_SV FS_SK(splat)(FS_SR a) { return (FS_SV){0} + a; }

/* Whether no lane of a comparison result is set. */
FS_INLINE int FS_SK(none)(FS_SI m)
{
    uint64_t words[sizeof(FS_SI) / 8];
    memcpy(words, &m, sizeof m);
    uint64_t any = 0;
    for (size_t w = 0; w < sizeof(FS_SI) / 8; w++) any |= words[w];
    return any == 0;
}

/* The smallest value of the dtype that is >= v (v a double). */
FS_INLINE FS_SR FS_SK(round_up)(double v)
{
    FS_SR r = (FS_SR)v;
    if ((double)r < v) r = FS_SK(next_up)(r);
    return r;
}

/* ---- scans ---------------------------------------------------------------- */

/* Index of the first entry > 0, or n. */
static ptrdiff_t FS_SK(first_positive)(const FS_SR *p, ptrdiff_t n)
{
    const FS_SV zero = {0};
    ptrdiff_t i = 0;
    for (; i + FS_SSTEP <= n; i += FS_SSTEP) {
        FS_SI hit = (FS_SK(load)(p + i) > zero) | (FS_SK(load)(p + i + FS_SLANES) > zero) |
                    (FS_SK(load)(p + i + 2 * FS_SLANES) > zero) | (FS_SK(load)(p + i + 3 * FS_SLANES) > zero);
        if (!FS_SK(none)(hit)) break;
    }
    for (; i < n; i++)
        if (p[i] > 0) return i;
    return n;
}

static int FS_SK(has_nan)(const FS_SR *x, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + FS_SSTEP <= n; i += FS_SSTEP) {
        FS_SV v0 = FS_SK(load)(x + i), v1 = FS_SK(load)(x + i + FS_SLANES);
        FS_SV v2 = FS_SK(load)(x + i + 2 * FS_SLANES), v3 = FS_SK(load)(x + i + 3 * FS_SLANES);
        if (!FS_SK(none)(~((v0 == v0) & (v1 == v1) & (v2 == v2) & (v3 == v3)))) return 1;
    }
    for (; i < n; i++)
        if (x[i] != x[i]) return 1;
    return 0;
}

static FS_SR FS_SK(max_of)(const FS_SR *p, ptrdiff_t n)
{
    FS_SV m = FS_SK(splat)(0);
    ptrdiff_t i = 0;
    for (; i + FS_SLANES <= n; i += FS_SLANES) {
        FS_SV v = FS_SK(load)(p + i);
        FS_SI up = v > m;
        m = (FS_SV)(((FS_SI)v & up) | ((FS_SI)m & ~up));
    }
    FS_SR best = 0;
    for (ptrdiff_t l = 0; l < FS_SLANES; l++)
        if (m[l] > best) best = m[l];
    for (; i < n; i++)
        if (p[i] > best) best = p[i];
    return best;
}

/* The entries of a row that take part: masked ones read -inf. */
static void FS_SK(copy_unmasked)(const FS_SR *x, const unsigned char *mask, ptrdiff_t stride, ptrdiff_t n,
                                 FS_SR *out)
{
    if (stride == 1) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = mask[i] ? x[i] : (FS_SR)-INFINITY;
    } else {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = mask[i * stride] ? x[i] : (FS_SR)-INFINITY;
    }
}

/* Why a row has no probabilities (the softmax gave NaN): a NaN, a +inf, or
 * nothing but -inf. */
static int64_t FS_SK(why_no_draw)(const FS_SR *x, ptrdiff_t n)
{
    int pos_inf = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        if (x[i] != x[i]) return FS_SAMPLE_NAN;
        pos_inf |= x[i] == (FS_SR)INFINITY;
    }
    return pos_inf ? FS_SAMPLE_POS_INF : FS_SAMPLE_NOTHING;
}

/* ---- top-k: selection on the logits ----------------------------------------- */

/* Restore the min-heap order below heap[i]. */
static void FS_SK(sift_down)(FS_SR *heap, ptrdiff_t k, ptrdiff_t i)
{
    const FS_SR v = heap[i];
    for (;;) {
        ptrdiff_t c = 2 * i + 1;
        if (c >= k) break;
        if (c + 1 < k && heap[c + 1] < heap[c]) c++;
        if (!(heap[c] < v)) break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = v;
}

/* The k-th largest of x[0..n), 1 <= k < n, k <= FS_SAMPLE_HEAP_K: a min-heap
 * of the k largest so far, whose root is the bar a new entry must pass.  On
 * most rows few entries pass it, so the scan tests four vectors at a time.
 * Sets *has_nan (and stops) at a NaN. */
static FS_SR FS_SK(kth_largest_by_heap)(const FS_SR *x, ptrdiff_t n, ptrdiff_t k, FS_SR *heap, int *has_nan)
{
    for (ptrdiff_t i = 0; i < k; i++) {
        if (x[i] != x[i]) { *has_nan = 1; return 0; }
        heap[i] = x[i];
    }
    for (ptrdiff_t i = k / 2 - 1; i >= 0; i--) FS_SK(sift_down)(heap, k, i);
    ptrdiff_t i = k;
    while (i < n) {
        ptrdiff_t end = n;
        if (i + FS_SSTEP <= n) {
            const FS_SV bar = FS_SK(splat)(heap[0]);
            FS_SI below = (FS_SK(load)(x + i) <= bar) & (FS_SK(load)(x + i + FS_SLANES) <= bar) &
                          (FS_SK(load)(x + i + 2 * FS_SLANES) <= bar) &
                          (FS_SK(load)(x + i + 3 * FS_SLANES) <= bar);
            if (FS_SK(none)(~below)) { i += FS_SSTEP; continue; }
            end = i + FS_SSTEP;
        }
        for (; i < end; i++) {
            const FS_SR v = x[i];
            if (v <= heap[0]) continue;
            if (v != v) { *has_nan = 1; return 0; }
            heap[0] = v;
            FS_SK(sift_down)(heap, k, 0);
        }
    }
    return heap[0];
}

/* Entries x[i] >= low, in index order, into vals / index; returns how many. */
static ptrdiff_t FS_SK(gather_at_least)(const FS_SR *x, ptrdiff_t n, FS_SR low, FS_SR *vals, int64_t *index)
{
    const FS_SV bar = FS_SK(splat)(low);
    ptrdiff_t m = 0, i = 0;
    while (i < n) {
        ptrdiff_t end = n;
        if (i + FS_SSTEP <= n) {
            FS_SI hit = (FS_SK(load)(x + i) >= bar) | (FS_SK(load)(x + i + FS_SLANES) >= bar) |
                        (FS_SK(load)(x + i + 2 * FS_SLANES) >= bar) | (FS_SK(load)(x + i + 3 * FS_SLANES) >= bar);
            if (FS_SK(none)(hit)) { i += FS_SSTEP; continue; }
            end = i + FS_SSTEP;
        }
        for (; i < end; i++) {
            if (x[i] >= low) {
                vals[m] = x[i];
                index[m] = i;
                m++;
            }
        }
    }
    return m;
}

/* ---- weighted selection (top-k with large k, top-p) ------------------------- */

/* Every selection below answers: the largest value t of v[0..n) whose weight
 * W(t), the total weight of the entries >= t, reaches `target`.  The weight
 * of an entry is 1 (by_value 0: t is the target-th largest value) or the
 * entry itself (by_value 1: probabilities, t is the top-p boundary).  When
 * even the whole set stays below the target, t is the smallest value, so
 * that everything is kept.  No NaN in v. */

static int FS_SK(descending)(const void *a, const void *b)
{
    const FS_SR x = *(const FS_SR *)a, y = *(const FS_SR *)b;
    return (x < y) - (x > y);
}

/* By sorting a copy: for few entries, and as the fallback that bounds the
 * selection's worst case.  acc: the weight already above v's entries. */
static FS_SR FS_SK(threshold_by_sort)(const FS_SR *v, ptrdiff_t n, const int by_value, double acc,
                                      double target, FS_SR *buf)
{
    memcpy(buf, v, (size_t)n * sizeof *buf);
    if (n <= FS_SELECT_SMALL) {
        for (ptrdiff_t i = 1; i < n; i++) {
            const FS_SR t = buf[i];
            ptrdiff_t j = i;
            for (; j > 0 && buf[j - 1] < t; j--) buf[j] = buf[j - 1];
            buf[j] = t;
        }
    } else {
        qsort(buf, (size_t)n, sizeof *buf, FS_SK(descending));
    }
    ptrdiff_t i = 0;
    while (i < n) {
        const FS_SR value = buf[i];
        ptrdiff_t ties = 0;
        for (; i < n && buf[i] == value; i++) ties++;
        acc += by_value ? (double)ties * (double)value : (double)ties;
        if (acc >= target) return value;
    }
    return buf[n - 1];
}

FS_INLINE FS_SR FS_SK(median3)(FS_SR a, FS_SR b, FS_SR c)
{
    const FS_SR lo = a < b ? a : b, hi = a < b ? b : a;
    const FS_SR m = hi < c ? hi : c;
    return lo > m ? lo : m;
}

/* One entry of a partition round: written to both free ends of dst, and
 * the end it belongs to advances (the other write is overwritten later). */
FS_INLINE void FS_SK(place)(const FS_SR x, const FS_SR pivot, const int by_value, FS_SR *dst, ptrdiff_t n,
                            ptrdiff_t *above, ptrdiff_t *below, double *w_above, double *w_equal)
{
    const int gt = x > pivot, lt = x < pivot;
    dst[*above] = x;
    dst[n - 1 - *below] = x;
    *above += gt;
    *below += lt;
    if (by_value) {
        *w_above += gt ? (double)x : 0.0;
        *w_equal += gt | lt ? 0.0 : (double)x;
    }
}

/* Quickselect on the weights: each round splits the candidates around a
 * pivot into those above it (written from the front of a scratch buffer)
 * and those below (from the back), without branches, summing the weight of
 * those above and of those equal, and keeps the side that holds the answer.
 * a and b hold n entries each; the rounds alternate between them.  After
 * FS_SELECT_ROUNDS rounds (bad pivots) the rest is sorted instead. */
FS_INLINE FS_SR FS_SK(threshold)(const FS_SR *v, ptrdiff_t n, const int by_value, double target, FS_SR *a,
                                 FS_SR *b)
{
    const FS_SR *src = v;
    FS_SR *dst = a, *spare = b;
    double acc = 0.0;
    for (int round = 0; n > FS_SELECT_SMALL && round < FS_SELECT_ROUNDS; round++) {
        const FS_SR pivot = FS_SK(median3)(src[0], src[n / 2], src[n - 1]);
        ptrdiff_t above = 0, below = 0;
        /* four partial sums each: independent additions */
        double w_above[4] = {0, 0, 0, 0}, w_equal[4] = {0, 0, 0, 0};
        ptrdiff_t i = 0;
        for (; i + 4 <= n; i += 4) {
            FS_SK(place)(src[i], pivot, by_value, dst, n, &above, &below, &w_above[0], &w_equal[0]);
            FS_SK(place)(src[i + 1], pivot, by_value, dst, n, &above, &below, &w_above[1], &w_equal[1]);
            FS_SK(place)(src[i + 2], pivot, by_value, dst, n, &above, &below, &w_above[2], &w_equal[2]);
            FS_SK(place)(src[i + 3], pivot, by_value, dst, n, &above, &below, &w_above[3], &w_equal[3]);
        }
        for (; i < n; i++)
            FS_SK(place)(src[i], pivot, by_value, dst, n, &above, &below, &w_above[0], &w_equal[0]);
        double weight_above = (double)above, weight_equal = (double)(n - above - below);
        if (by_value) {
            weight_above = (w_above[0] + w_above[1]) + (w_above[2] + w_above[3]);
            weight_equal = (w_equal[0] + w_equal[1]) + (w_equal[2] + w_equal[3]);
        }
        if (acc + weight_above >= target) {
            src = dst;
            n = above;
        } else if (acc + weight_above + weight_equal >= target || below == 0) {
            return pivot;
        } else {
            acc += weight_above + weight_equal;
            src = dst + (n - below);
            n = below;
        }
        FS_SR *t = dst;
        dst = spare;
        spare = t;
    }
    return FS_SK(threshold_by_sort)(src, n, by_value, acc, target, dst);
}

/* ---- the draw --------------------------------------------------------------- */

/* Sum of the entries >= low of one block (at most FS_DRAW_BLOCK entries):
 * lanes in the row dtype, few terms each, then in double. */
static double FS_SK(block_sum)(const FS_SR *p, ptrdiff_t len, FS_SR low)
{
    const FS_SV bar = FS_SK(splat)(low);
    FS_SV s0 = {0}, s1 = {0};
    ptrdiff_t i = 0;
    for (; i + 2 * FS_SLANES <= len; i += 2 * FS_SLANES) {
        FS_SV v0 = FS_SK(load)(p + i), v1 = FS_SK(load)(p + i + FS_SLANES);
        s0 += (FS_SV)((FS_SI)v0 & (v0 >= bar));
        s1 += (FS_SV)((FS_SI)v1 & (v1 >= bar));
    }
    s0 += s1;
    double sum = 0.0;
    for (ptrdiff_t l = 0; l < FS_SLANES; l++) sum += (double)s0[l];
    for (; i < len; i++)
        if (p[i] >= low) sum += (double)p[i];
    return sum;
}

static double FS_SK(total)(const FS_SR *p, ptrdiff_t n)
{
    double sum = 0.0;
    for (ptrdiff_t start = 0; start < n; start += FS_DRAW_BLOCK)
        sum += FS_SK(block_sum)(p + start, n - start < FS_DRAW_BLOCK ? n - start : FS_DRAW_BLOCK, 0);
    return sum;
}

/* Inverse CDF over the entries >= low (> 0), in index order, at u in [0, 1):
 * first the block whose running total passes u * total, then the entry
 * within the block, at the same fraction of the block's own exact sum, so
 * that the rounding of a block's sum shifts no entry's share within it.
 * Returns -1 when nothing has a positive weight. */
static ptrdiff_t FS_SK(draw)(const FS_SR *p, ptrdiff_t n, FS_SR low, double u, double *block_sums)
{
    const ptrdiff_t blocks = (n + FS_DRAW_BLOCK - 1) / FS_DRAW_BLOCK;
    double total = 0.0;
    for (ptrdiff_t b = 0; b < blocks; b++) {
        const ptrdiff_t start = b * FS_DRAW_BLOCK;
        block_sums[b] = FS_SK(block_sum)(p + start, n - start < FS_DRAW_BLOCK ? n - start : FS_DRAW_BLOCK, low);
        total += block_sums[b];
    }
    const double target = u * total;
    double before = 0.0, fraction = FS_BELOW_ONE;
    ptrdiff_t chosen = -1;
    for (ptrdiff_t b = 0; b < blocks; b++) {
        if (!(block_sums[b] > 0.0)) continue;
        chosen = b;
        if (before + block_sums[b] > target) {
            fraction = (target - before) / block_sums[b];
            break;
        }
        before += block_sums[b];
    }
    if (chosen < 0) return -1;
    if (!(fraction >= 0.0)) fraction = 0.0;
    if (fraction > FS_BELOW_ONE) fraction = FS_BELOW_ONE;

    const FS_SR *q = p + chosen * FS_DRAW_BLOCK;
    const ptrdiff_t len = n - chosen * FS_DRAW_BLOCK < FS_DRAW_BLOCK ? n - chosen * FS_DRAW_BLOCK : FS_DRAW_BLOCK;
    double inside = 0.0;
    for (ptrdiff_t i = 0; i < len; i++)
        if (q[i] >= low) inside += (double)q[i];
    /* the running sum below adds the same terms in the same order, so it
     * ends at `inside` exactly; if rounding puts the goal there, the last
     * positive entry is taken */
    const double goal = fraction * inside;
    double running = 0.0;
    ptrdiff_t pick = -1;
    for (ptrdiff_t i = 0; i < len; i++) {
        if (q[i] >= low && q[i] > 0) {
            running += (double)q[i];
            pick = i;
            if (running > goal) break;
        }
    }
    return pick < 0 ? -1 : chosen * FS_DRAW_BLOCK + pick;
}

/* ---- one row ---------------------------------------------------------------- */

static int64_t FS_SK(sample_row)(fs_sampler *s, const FS_SR *x, const unsigned char *mask, ptrdiff_t mask_stride,
                                 double u)
{
    const ptrdiff_t n = s->n;
    const fs_params *p = &s->params;
    if (n == 0) return FS_SAMPLE_NOTHING;
    const FS_SR *logits = x;
    if (mask != NULL) {
        FS_SK(copy_unmasked)(x, mask, mask_stride, n, (FS_SR *)s->logits);
        logits = (const FS_SR *)s->logits;
    }
    FS_SR *probs = (FS_SR *)s->probs;

    if (p->temperature == 0.0) {
        /* softmax at T = 0 is positive exactly at the maxima */
        s->kernels->rows(FS_SOFTMAX, logits, probs, 1, n, p, 0);
        const ptrdiff_t first = FS_SK(first_positive)(probs, n);
        if (first == n || logits[first] == (FS_SR)-INFINITY) return FS_SK(why_no_draw)(logits, n);
        return first;
    }

    const FS_SR *kept = logits;
    const int64_t *index = NULL;
    ptrdiff_t len = n;
    const ptrdiff_t k = s->filters.top_k;
    if (k > 0 && k < n) {
        int has_nan = 0;
        FS_SR kth = 0;
        if (k <= FS_SAMPLE_HEAP_K) {
            kth = FS_SK(kth_largest_by_heap)(logits, n, k, (FS_SR *)s->heap, &has_nan);
        } else {
            has_nan = FS_SK(has_nan)(logits, n);
            if (!has_nan)
                kth = FS_SK(threshold)(logits, n, 0, (double)k, (FS_SR *)s->select_a, (FS_SR *)s->select_b);
        }
        if (has_nan) return FS_SAMPLE_NAN;
        len = FS_SK(gather_at_least)(logits, n, kth, (FS_SR *)s->kept, s->index);
        kept = (const FS_SR *)s->kept;
        index = s->index;
    }
    s->kernels->rows(FS_SOFTMAX, kept, probs, 1, len, p, 0);
    if (probs[0] != probs[0]) return FS_SK(why_no_draw)(logits, n);

    FS_SR low = 0;
    if (s->filters.top_p < 1.0) {
        const double target = s->filters.top_p * FS_SK(total)(probs, len);
        low = FS_SK(threshold)(probs, len, 1, target, (FS_SR *)s->select_a, (FS_SR *)s->select_b);
    }
    if (s->filters.min_p > 0.0) {
        const FS_SR cut = FS_SK(round_up)(s->filters.min_p * (double)FS_SK(max_of)(probs, len));
        if (cut > low) low = cut;
    }
    const ptrdiff_t drawn = FS_SK(draw)(probs, len, low, u, s->block_sums);
    if (drawn < 0) return FS_SAMPLE_NOTHING;
    return index != NULL ? index[drawn] : drawn;
}

#undef FS_SLANES
#undef FS_SSTEP
