/* The sampling kernels for one dtype, included by sample_kernels.c once for
 * float and once for double, with these defined: FS_SR (the dtype), FS_SV /
 * FS_SI / FS_SU (a vector of it, of same-width ints, and the unsigned int of
 * its bit pattern), FS_BUCKET_SHIFT (bits dropped for a top-p histogram
 * bucket), FS_MOVEMASK (SSE2 lane mask) and FS_SK(name) (symbol suffixes).
 * They are undefined at the end.  No include guard on purpose. */

#define FS_SLANES ((ptrdiff_t)(sizeof(FS_SV) / sizeof(FS_SR)))
/* Elements per step of the scans that look for rare entries: one test for
 * four vectors. */
#define FS_SSTEP (4 * FS_SLANES)

FS_INLINE FS_SV FS_SK(load)(const FS_SR *p) { FS_SV v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE FS_SV FS_SK(splat)(FS_SR a) { return (FS_SV){0} + a; }

/* Whether no lane of a comparison result is set. */
FS_INLINE int FS_SK(none)(FS_SI m)
{
#if defined(__SSE2__) && defined(FS_MOVEMASK)
    return FS_MOVEMASK(m) == 0;
#else
    uint64_t words[sizeof(FS_SI) / 8];
    memcpy(words, &m, sizeof m);
    uint64_t any = 0;
    for (size_t w = 0; w < sizeof(FS_SI) / 8; w++) any |= words[w];
    return any == 0;
#endif
}

/* The smallest value of the dtype that is >= v (v a double). */
FS_INLINE FS_SR FS_SK(round_up)(double v)
{
    FS_SR r = (FS_SR)v;
    if ((double)r < v) r = FS_SK(next_up)(r);
    return r;
}

/* ---- scans ---------------------------------------------------------------- */

/* Index of the first entry equal to v, or n. */
static ptrdiff_t FS_SK(first_equal)(const FS_SR *x, ptrdiff_t n, FS_SR v)
{
    const FS_SV target = FS_SK(splat)(v);
    ptrdiff_t i = 0;
    for (; i + FS_SSTEP <= n; i += FS_SSTEP) {
        FS_SI hit = (FS_SK(load)(x + i) == target) | (FS_SK(load)(x + i + FS_SLANES) == target) |
                    (FS_SK(load)(x + i + 2 * FS_SLANES) == target) |
                    (FS_SK(load)(x + i + 3 * FS_SLANES) == target);
        if (!FS_SK(none)(hit)) break;
    }
    for (; i < n; i++)
        if (x[i] == v) return i;
    return n;
}

/* The maximum of x[0..n) (-inf for n = 0) by the softmax kernels' max pass,
 * in the instruction set in use; *has_nan tells whether a NaN was seen (the
 * maximum means nothing then). */
FS_INLINE FS_SR FS_SK(max_of)(const fs_kernels *kernels, const FS_SR *x, ptrdiff_t n, int *has_nan)
{
    return (FS_SR)kernels->row_max(x, n, has_nan);
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

/* Entries of x[from..to) with lo <= x[i] <= hi, appended in index order to
 * vals (and their indices to index, unless NULL) after the first m; returns
 * the new count.  For scans that keep few entries: four vectors are tested
 * at a time, and a step with a hit appends all its entries without branches,
 * each advancing the count only if it is in range (so vals and index need
 * room for every entry scanned). */
FS_INLINE ptrdiff_t FS_SK(gather)(const FS_SR *x, ptrdiff_t from, ptrdiff_t to, FS_SR lo, FS_SR hi, FS_SR *vals,
                                  int64_t *index, ptrdiff_t m)
{
    const FS_SV vlo = FS_SK(splat)(lo), vhi = FS_SK(splat)(hi);
    ptrdiff_t i = from;
    while (i < to) {
        ptrdiff_t end = to;
        if (i + FS_SSTEP <= to) {
            FS_SI hit = {0};
            for (int j = 0; j < 4; j++) {
                const FS_SV v = FS_SK(load)(x + i + j * FS_SLANES);
                hit |= (v >= vlo) & (v <= vhi);
            }
            if (FS_SK(none)(hit)) { i += FS_SSTEP; continue; }
            end = i + FS_SSTEP;
        }
        for (; i < end; i++) {
            vals[m] = x[i];
            if (index != NULL) index[m] = i;
            m += (x[i] >= lo) & (x[i] <= hi);
        }
    }
    return m;
}

/* ---- weighted selection (top-k, top-p) ---------------------------------------- */

/* A selection answers: the largest value t of v[0..n) whose weight W(t), the
 * total weight of the entries >= t plus `acc` (the weight of entries already
 * known to lie above all of v), reaches `target`.  An entry weighs 1
 * (by_value 0: t is the target-th largest value) or its own value (by_value
 * 1: probabilities; t is the top-p boundary).  When even the whole set stays
 * below the target, t is the smallest value, so that everything is kept.
 * *kept receives W(t).  No NaN in v. */

static int FS_SK(descending)(const void *a, const void *b)
{
    const FS_SR x = *(const FS_SR *)a, y = *(const FS_SR *)b;
    return (x < y) - (x > y);
}

/* By sorting a copy in buf: for few entries, and as the fallback that bounds
 * the selection's worst case. */
static FS_SR FS_SK(threshold_by_sort)(const FS_SR *v, ptrdiff_t n, const int by_value, double acc,
                                      double target, FS_SR *buf, double *kept)
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
    FS_SR value = buf[n - 1];
    while (i < n) {
        value = buf[i];
        ptrdiff_t ties = 0;
        for (; i < n && buf[i] == value; i++) ties++;
        acc += by_value ? (double)ties * (double)value : (double)ties;
        if (acc >= target) break;
    }
    *kept = acc;
    return value;
}

FS_INLINE FS_SR FS_SK(median3)(FS_SR a, FS_SR b, FS_SR c)
{
    const FS_SR lo = a < b ? a : b, hi = a < b ? b : a;
    const FS_SR m = hi < c ? hi : c;
    return lo > m ? lo : m;
}

/* One entry of a partition round: written to both free ends of dst, and
 * the end it belongs to advances (the other copy is overwritten later). */
FS_INLINE void FS_SK(place)(const FS_SR x, const FS_SR pivot, const int by_value, FS_SR *dst, ptrdiff_t n,
                            ptrdiff_t *above, ptrdiff_t *below, double *w_above)
{
    const int gt = x > pivot, lt = x < pivot;
    dst[*above] = x;
    dst[n - 1 - *below] = x;
    *above += gt;
    *below += lt;
    if (by_value) *w_above += (double)x * (double)gt;     /* x is finite: no branch */
}

/* Quickselect on the weights: each round splits the candidates around a
 * pivot into those above it (written from the front of dst) and those below
 * (from the back), without branches, and keeps the side that holds the
 * answer.  The rounds alternate between dst and spare; spare may be the
 * buffer that holds v.  After FS_SELECT_ROUNDS rounds (bad pivots) the rest
 * is sorted instead. */
static FS_SR FS_SK(threshold)(const FS_SR *v, ptrdiff_t n, const int by_value, double acc, double target,
                              FS_SR *dst, FS_SR *spare, double *kept)
{
    const FS_SR *src = v;
    for (int round = 0; n > FS_SELECT_SMALL && round < FS_SELECT_ROUNDS; round++) {
        const FS_SR pivot = FS_SK(median3)(src[0], src[n / 2], src[n - 1]);
        ptrdiff_t above = 0, below = 0;
        double w_above[4] = {0, 0, 0, 0};   /* independent additions */
        ptrdiff_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int j = 0; j < 4; j++)
                FS_SK(place)(src[i + j], pivot, by_value, dst, n, &above, &below, &w_above[j]);
        for (; i < n; i++) FS_SK(place)(src[i], pivot, by_value, dst, n, &above, &below, &w_above[0]);
        const double ties = (double)(n - above - below);
        const double weight_above = by_value ? (w_above[0] + w_above[1]) + (w_above[2] + w_above[3]) : (double)above;
        const double weight_equal = by_value ? ties * (double)pivot : ties;
        if (acc + weight_above >= target) {
            src = dst;
            n = above;
        } else if (acc + weight_above + weight_equal >= target || below == 0) {
            *kept = acc + weight_above + weight_equal;
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
    return FS_SK(threshold_by_sort)(src, n, by_value, acc, target, dst, kept);
}

/* ---- top-k ------------------------------------------------------------------ */

/* The kept entries of x[0..n) under top-k, 1 <= k < n (x >= the k-th
 * largest value, ties kept), in index order, into vals and index (n entries
 * each); returns how many, or -1 at a NaN.  Never a sort of the row:
 *   1. the maximum of each group of entries, with groups as large as leaves
 *      at least 2k of them (one pass, no branches);
 *   2. the bar: the k-th largest group maximum.  k groups reach it, so at
 *      least k entries do, and the row's k-th largest value is >= the bar;
 *   3. the candidates: the entries >= the bar, found only in the groups
 *      whose maximum reaches it (about k of them);
 *   4. a selection among the candidates gives the k-th largest value.
 * With k too large for 2k groups, the selection runs on the whole row. */
static ptrdiff_t FS_SK(top_k)(const fs_kernels *kernels, const FS_SR *x, ptrdiff_t n, ptrdiff_t k, FS_SR *vals,
                              int64_t *index, FS_SR *maxima, FS_SR *a, FS_SR *b)
{
    ptrdiff_t group = FS_TOPK_GROUP;
    while (group > FS_TOPK_GROUP_MIN && n / group < 2 * k) group /= 2;
    const int whole_row = n / group < 2 * k;
    const ptrdiff_t groups = whole_row ? 1 : (n + group - 1) / group;
    if (whole_row) group = n;
    int has_nan = 0;
    for (ptrdiff_t g = 0; g < groups; g++) {
        int nan;
        maxima[g] = FS_SK(max_of)(kernels, x + g * group, n - g * group < group ? n - g * group : group, &nan);
        has_nan |= nan;
    }
    if (has_nan) return -1;
    double count;
    const FS_SR bar = whole_row ? FS_SK(threshold)(x, n, 0, 0.0, (double)k, a, b, &count)
                                : FS_SK(threshold)(maxima, groups, 0, 0.0, (double)k, a, b, &count);
    ptrdiff_t m = 0;
    for (ptrdiff_t g = 0; g < groups; g++)
        if (maxima[g] >= bar)
            m = FS_SK(gather)(x, g * group, g * group + group < n ? g * group + group : n, bar, (FS_SR)INFINITY,
                              vals, index, m);
    if (m > k) {
        const FS_SR kth = FS_SK(threshold)(vals, m, 0, 0.0, (double)k, a, b, &count);
        ptrdiff_t kept = 0;
        for (ptrdiff_t c = 0; c < m; c++) {
            vals[kept] = vals[c];
            index[kept] = index[c];
            kept += vals[c] >= kth;
        }
        m = kept;
    }
    return m;
}

/* The histogram bucket of a probability: the top bits of its bit pattern,
 * which order non-negative values as the values do. */
FS_INLINE ptrdiff_t FS_SK(bucket)(FS_SR v)
{
    FS_SU bits;
    memcpy(&bits, &v, sizeof bits);
    bits >>= FS_BUCKET_SHIFT;
    return bits < FS_BUCKETS ? (ptrdiff_t)bits : FS_BUCKETS - 1;
}

/* The top-p boundary of probabilities p[0..n) (no NaN) for a target mass,
 * 0 when the whole row stays below it.  Long rows first sum the mass per
 * bucket of the binary exponent (and, for float, 3 more bits): the bucket
 * where the running mass from the top reaches the target holds the
 * boundary, and only its entries go on to the selection. */
static FS_SR FS_SK(top_p_boundary)(const FS_SR *p, ptrdiff_t n, double target, double *histogram, FS_SR *a,
                                   FS_SR *b, double *kept)
{
    if (n < FS_HISTOGRAM_MIN) return FS_SK(threshold)(p, n, 1, 0.0, target, a, b, kept);
    /* four interleaved histograms: consecutive entries rarely wait for each
     * other's update of the same bucket */
    memset(histogram, 0, 4 * FS_BUCKETS * sizeof *histogram);
    ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) histogram[j * FS_BUCKETS + FS_SK(bucket)(p[i + j])] += (double)p[i + j];
    for (; i < n; i++) histogram[FS_SK(bucket)(p[i])] += (double)p[i];
    double acc = 0.0;
    for (ptrdiff_t bucket = FS_BUCKETS - 1; bucket >= 0; bucket--) {
        const double mass = (histogram[bucket] + histogram[FS_BUCKETS + bucket]) +
                            (histogram[2 * FS_BUCKETS + bucket] + histogram[3 * FS_BUCKETS + bucket]);
        if (mass > 0.0 && acc + mass >= target) {
            /* the bucket's values: from its lowest bit pattern to the one
             * below the next bucket's */
            const FS_SU lo_bits = (FS_SU)bucket << FS_BUCKET_SHIFT;
            const FS_SU hi_bits = ((FS_SU)(bucket + 1) << FS_BUCKET_SHIFT) - 1;
            FS_SR lo, hi;
            memcpy(&lo, &lo_bits, sizeof lo);
            memcpy(&hi, &hi_bits, sizeof hi);
            if (bucket == FS_BUCKETS - 1) hi = (FS_SR)INFINITY;
            const ptrdiff_t m = FS_SK(gather)(p, 0, n, lo, hi, a, NULL, 0);
            return FS_SK(threshold)(a, m, 1, acc, target, b, a, kept);
        }
        acc += mass;
    }
    *kept = acc;
    return 0;
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

/* The entry of a block (len entries from q) at `fraction` of the block's
 * weight, counted from its start over the entries >= low, with the block's
 * own exact sum, so that the rounding of its lane sums shifts no entry's
 * share within it. */
static ptrdiff_t FS_SK(pick_in_block)(const FS_SR *q, ptrdiff_t len, FS_SR low, double fraction)
{
    if (!(fraction >= 0.0)) fraction = 0.0;
    if (fraction > FS_BELOW_ONE) fraction = FS_BELOW_ONE;
    double inside = 0.0;
    for (ptrdiff_t i = 0; i < len; i++)
        if (q[i] >= low) inside += (double)q[i];
    /* the running sum adds the same terms in the same order, so it ends at
     * `inside` exactly; if rounding puts the goal there, the last positive
     * entry is taken */
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
    return pick;
}

/* Inverse CDF over the entries >= low (and > 0), in index order, with u in
 * [0, 1): the block whose running weight passes the goal, then the entry
 * within it.  `bound` is an upper bound of the total weight W (the softmax
 * sums to 1 within FS_SUM_SLACK): the goal is u * bound, so the scan usually
 * stops early, without W.  A goal beyond W (probability 1 - W / bound) is
 * uniform on [W, bound) given that; scaled to a new uniform number it draws
 * again, now from the exact W, so every entry is drawn with probability
 * exactly p / bound + (1 - W / bound) * p / W = p / W.  Returns -1 when
 * nothing has a positive weight. */
static ptrdiff_t FS_SK(draw)(const FS_SR *p, ptrdiff_t n, FS_SR low, double u, double bound, double *block_sums)
{
    const ptrdiff_t blocks = (n + FS_DRAW_BLOCK - 1) / FS_DRAW_BLOCK;
    double goal = u * bound, before = 0.0;
    for (ptrdiff_t b = 0; b < blocks; b++) {
        const ptrdiff_t start = b * FS_DRAW_BLOCK, len = n - start < FS_DRAW_BLOCK ? n - start : FS_DRAW_BLOCK;
        const double weight = block_sums[b] = FS_SK(block_sum)(p + start, len, low);
        if (weight > 0.0 && before + weight > goal)
            return start + FS_SK(pick_in_block)(p + start, len, low, (goal - before) / weight);
        before += weight;
    }
    const double total = before;
    if (!(total > 0.0)) return -1;
    double v = (goal - total) / (bound - total);
    if (!(v >= 0.0)) v = 0.0;                 /* a bound below W: a kernel off its accuracy */
    if (v > FS_BELOW_ONE) v = FS_BELOW_ONE;
    goal = v * total;
    before = 0.0;
    ptrdiff_t last = 0;
    for (ptrdiff_t b = 0; b < blocks; b++) {
        if (!(block_sums[b] > 0.0)) continue;
        last = b;
        if (before + block_sums[b] > goal) break;
        before += block_sums[b];
    }
    const ptrdiff_t start = last * FS_DRAW_BLOCK, len = n - start < FS_DRAW_BLOCK ? n - start : FS_DRAW_BLOCK;
    return start + FS_SK(pick_in_block)(p + start, len, low, (goal - before) / block_sums[last]);
}

/* ---- the row edits: penalties, logit_bias, where= ------------------------------ */

/* The row the filters see: x itself when nothing edits it, else the
 * sampler's scratch row with, in this order, the penalties of the history
 * (on the raw logit), the bias added, and masked entries at -inf.  x is
 * never written.  Returns 0, or FS_SAMPLE_BAD_TOKEN for a history id outside
 * [-1, n) (the counts are left at zero either way). */
static int FS_SK(edit)(fs_sampler *s, const FS_SR *x, const fs_sample_row *row, const FS_SR **logits)
{
    const ptrdiff_t n = s->n;
    const int penalised = row->history_len > 0 &&
                          (row->repetition != 1.0 || row->presence != 0.0 || row->frequency != 0.0);
    *logits = x;
    if (row->mask == NULL && row->bias == NULL && !penalised) return 0;
    FS_SR *out = (FS_SR *)s->logits;
    const FS_SR *bias = (const FS_SR *)row->bias;
    const ptrdiff_t bs = row->bias_stride, ms = row->mask_stride;
    const unsigned char *mask = row->mask;
    if (mask == NULL && bias == NULL) {
        memcpy(out, x, (size_t)n * sizeof *out);
    } else if (mask == NULL && bs == 1) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] + bias[i];
    } else if (mask == NULL) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] + bias[i * bs];
    } else if (bias == NULL) {
        FS_SK(copy_unmasked)(x, mask, ms, n, out);
    } else {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = mask[i * ms] ? x[i] + bias[i * bs] : (FS_SR)-INFINITY;
    }
    if (penalised) {
        /* counts of the ids, then each distinct id once (its count back to
         * zero), so the work is the history's length, not the row's */
        uint32_t *counts = s->counts;
        const int64_t *h = row->history;
        const ptrdiff_t len = row->history_len;
        for (ptrdiff_t j = 0; j < len; j++) {
            const int64_t v = h[j];
            if (v == -1) continue;
            if (v < -1 || v >= n) {
                for (ptrdiff_t i = 0; i < j; i++)
                    if (h[i] >= 0) counts[h[i]] = 0;
                return FS_SAMPLE_BAD_TOKEN;
            }
            counts[v]++;
        }
        for (ptrdiff_t j = 0; j < len; j++) {
            const int64_t v = h[j];
            if (v < 0 || counts[v] == 0) continue;
            const double c = (double)counts[v];
            counts[v] = 0;
            if (mask != NULL && !mask[v * ms]) continue;
            double z = (double)x[v];
            z = z > 0.0 ? z / row->repetition : z * row->repetition;
            z = z - row->presence - row->frequency * c;
            if (bias != NULL) z += (double)bias[v * bs];
            out[v] = (FS_SR)z;
        }
    }
    *logits = out;
    return 0;
}

/* ---- the distribution of a row ---------------------------------------------------- */

/* A row's final distribution at T > 0: the entries of probs[0..len) >= low
 * and > 0, in proportion to their values; probs[j] belongs to the row's
 * entry index[j] (index NULL: j).  bound: an upper bound of their sum. */
typedef struct {
    const FS_SR *kept;      /* the logits that went through the softmax */
    const int64_t *index;
    ptrdiff_t len;
    FS_SR low;
    double bound;
} FS_SK(dist);

/* The first maximal entry (greedy decoding), or a negative status. */
static int64_t FS_SK(greedy)(const fs_sampler *s, const FS_SR *logits)
{
    int has_nan;
    const FS_SR top = FS_SK(max_of)(s->kernels, logits, s->n, &has_nan);
    if (has_nan) return FS_SAMPLE_NAN;
    if (top == (FS_SR)-INFINITY) return FS_SAMPLE_NOTHING;
    return FS_SK(first_equal)(logits, s->n, top);
}

/* Temperature, top-k, top-p and min-p on a row of n >= 1 entries, T > 0:
 * the probabilities go to s->probs.  Returns 0 or a negative status. */
static int FS_SK(prepare)(fs_sampler *s, const FS_SR *logits, const fs_sample_row *row, FS_SK(dist) *d)
{
    const ptrdiff_t n = s->n;
    FS_SR *select_a = (FS_SR *)s->select_a, *select_b = (FS_SR *)s->select_b;
    FS_SR *probs = (FS_SR *)s->probs;
    d->kept = logits;
    d->index = NULL;
    d->len = n;
    if (row->top_k > 0 && row->top_k < n) {
        d->len = FS_SK(top_k)(s->kernels, logits, n, row->top_k, (FS_SR *)s->kept, s->index, (FS_SR *)s->maxima,
                              select_a, select_b);
        if (d->len < 0) return FS_SAMPLE_NAN;
        d->kept = (const FS_SR *)s->kept;
        d->index = s->index;
    }
    s->kernels->rows(FS_SOFTMAX, d->kept, probs, 1, d->len, &s->params, 0);
    if (probs[0] != probs[0]) return (int)FS_SK(why_no_draw)(logits, n);
    d->low = 0;
    d->bound = 1.0 + FS_SUM_SLACK;
    if (row->top_p < 1.0) {
        double mass;
        d->low = FS_SK(top_p_boundary)(probs, d->len, row->top_p * FS_SK(total)(probs, d->len), s->histogram,
                                       select_a, select_b, &mass);
        d->bound = mass * (1.0 + FS_SUM_SLACK);
    }
    if (row->min_p > 0.0) {
        int has_nan;
        const FS_SR cut = FS_SK(round_up)(row->min_p * (double)FS_SK(max_of)(s->kernels, probs, d->len, &has_nan));
        if (cut > d->low) d->low = cut;
    }
    return 0;
}

/* The kept mass: the sum the draw renormalises by, block by block as it
 * adds. */
static double FS_SK(kept_mass)(const FS_SR *p, ptrdiff_t n, FS_SR low)
{
    double sum = 0.0;
    for (ptrdiff_t start = 0; start < n; start += FS_DRAW_BLOCK)
        sum += FS_SK(block_sum)(p + start, n - start < FS_DRAW_BLOCK ? n - start : FS_DRAW_BLOCK, low);
    return sum;
}

/* ---- the most likely entries (top_logprobs) --------------------------------------- */

/* (value, position) descending by value, then ascending by position: a
 * strict order (positions differ), so the heap sort gives one result. */
FS_INLINE int FS_SK(before)(FS_SR va, int64_t pa, FS_SR vb, int64_t pb)
{
    return va > vb || (va == vb && pa < pb);
}

static void FS_SK(sift)(FS_SR *v, int64_t *pos, ptrdiff_t root, ptrdiff_t m)
{
    for (;;) {
        ptrdiff_t child = 2 * root + 1;
        if (child >= m) return;
        /* a min-heap of the order: the root comes last in the sorted result */
        if (child + 1 < m && FS_SK(before)(v[child], pos[child], v[child + 1], pos[child + 1])) child++;
        if (FS_SK(before)(v[child], pos[child], v[root], pos[root])) return;
        const FS_SR tv = v[root]; v[root] = v[child]; v[child] = tv;
        const int64_t tp = pos[root]; pos[root] = pos[child]; pos[child] = tp;
        root = child;
    }
}

/* The positions of the min(top_n, len) largest of v[0..len) (no NaN), ties
 * by lower position, most likely first, into s->top_index (their values in
 * s->top_vals); returns how many.  Candidates come from top-k's selection
 * (the entries >= the top_n-th largest, ties kept), never a sort of the row. */
static ptrdiff_t FS_SK(top_entries)(fs_sampler *s, const FS_SR *v, ptrdiff_t len)
{
    const ptrdiff_t want = s->needs.top_n;
    FS_SR *vals = (FS_SR *)s->top_vals;
    int64_t *pos = s->top_index;
    ptrdiff_t m;
    if (want < len) {
        m = FS_SK(top_k)(s->kernels, v, len, want, vals, pos, (FS_SR *)s->maxima, (FS_SR *)s->select_a,
                         (FS_SR *)s->select_b);
    } else {
        for (ptrdiff_t i = 0; i < len; i++) {
            vals[i] = v[i];
            pos[i] = i;
        }
        m = len;
    }
    if (m > want) {
        /* ties at the boundary: the lower positions (the candidates are in
         * position order) */
        FS_SR kth = vals[0];
        ptrdiff_t above = 0;
        for (ptrdiff_t i = 0; i < m; i++) kth = vals[i] < kth ? vals[i] : kth;
        for (ptrdiff_t i = 0; i < m; i++) above += vals[i] > kth;
        ptrdiff_t ties = want - above, kept = 0;
        for (ptrdiff_t i = 0; i < m; i++) {
            const int take = vals[i] > kth || (vals[i] == kth && ties > 0);
            ties -= vals[i] == kth && take;
            vals[kept] = vals[i];
            pos[kept] = pos[i];
            kept += take;
        }
        m = kept;
    }
    for (ptrdiff_t root = m / 2 - 1; root >= 0; root--) FS_SK(sift)(vals, pos, root, m);
    for (ptrdiff_t end = m - 1; end > 0; end--) {
        const FS_SR tv = vals[0]; vals[0] = vals[end]; vals[end] = tv;
        const int64_t tp = pos[0]; pos[0] = pos[end]; pos[end] = tp;
        FS_SK(sift)(vals, pos, 0, end);
    }
    return m;
}

static void FS_SK(fill_top)(const fs_sampler *s, const fs_sample_logprobs *lp, ptrdiff_t from, double value)
{
    for (ptrdiff_t j = from; j < s->needs.top_n; j++) {
        lp->top_tokens[j] = -1;
        lp->top_logprobs[j] = value;
    }
}

/* "raw": log_softmax of x as given (T = 1, nothing edited or filtered). */
static void FS_SK(raw_logprobs)(fs_sampler *s, const FS_SR *x, int64_t token, const fs_sample_logprobs *lp)
{
    fs_row_result r;
    s->kernels->row_stats(x, NULL, s->n, &s->unit_params, NULL, &r);
    if (r.kind != FS_ROW_NORMAL) {      /* a NaN or +inf in the row: log_softmax is NaN */
        *lp->logprob = NAN;
        FS_SK(fill_top)(s, lp, 0, NAN);
        return;
    }
    *lp->logprob = (double)x[token] - r.logsumexp;
    if (s->needs.top_n == 0) return;
    const ptrdiff_t m = FS_SK(top_entries)(s, x, s->n);
    ptrdiff_t t = 0;
    for (; t < m && ((const FS_SR *)s->top_vals)[t] != (FS_SR)-INFINITY; t++) {
        lp->top_tokens[t] = s->top_index[t];
        lp->top_logprobs[t] = (double)((const FS_SR *)s->top_vals)[t] - r.logsumexp;
    }
    FS_SK(fill_top)(s, lp, t, -INFINITY);
}

/* "processed": the log-probabilities of the distribution d drawn from. */
static void FS_SK(processed_logprobs)(fs_sampler *s, const FS_SK(dist) *d, ptrdiff_t drawn,
                                      const fs_sample_logprobs *lp)
{
    const FS_SR *probs = (const FS_SR *)s->probs;
    const double log_mass = log(FS_SK(kept_mass)(probs, d->len, d->low));
    *lp->logprob = log((double)probs[drawn]) - log_mass;
    if (s->needs.top_n == 0) return;
    const ptrdiff_t m = FS_SK(top_entries)(s, probs, d->len);
    ptrdiff_t t = 0;
    for (; t < m; t++) {
        const ptrdiff_t j = s->top_index[t];
        if (!(probs[j] >= d->low && probs[j] > 0)) break;     /* the rest is filtered out */
        lp->top_tokens[t] = d->index != NULL ? d->index[j] : j;
        lp->top_logprobs[t] = log((double)probs[j]) - log_mass;
    }
    FS_SK(fill_top)(s, lp, t, -INFINITY);
}

/* ---- one row ---------------------------------------------------------------- */

static int64_t FS_SK(sample_row)(fs_sampler *s, const FS_SR *x, const fs_sample_row *row, double u,
                                 const fs_sample_logprobs *lp)
{
    if (s->n == 0) return FS_SAMPLE_NOTHING;
    const FS_SR *logits;
    const int edited = FS_SK(edit)(s, x, row, &logits);
    if (edited < 0) return edited;
    int64_t token;
    if (s->params.temperature == 0.0) {
        /* the limit T -> 0+ puts all the mass on the maxima; greedy decoding
         * takes the first */
        token = FS_SK(greedy)(s, logits);
        if (token < 0 || lp == NULL) return token;
        if (lp->kind == FS_LOGPROBS_PROCESSED) {
            *lp->logprob = 0.0;
            if (s->needs.top_n > 0) {
                lp->top_tokens[0] = token;
                lp->top_logprobs[0] = 0.0;
                FS_SK(fill_top)(s, lp, 1, -INFINITY);
            }
        }
    } else {
        FS_SK(dist) d;
        const int status = FS_SK(prepare)(s, logits, row, &d);
        if (status < 0) return status;
        const ptrdiff_t drawn = FS_SK(draw)((const FS_SR *)s->probs, d.len, d.low, u, d.bound, s->block_sums);
        if (drawn < 0) return FS_SAMPLE_NOTHING;
        token = d.index != NULL ? d.index[drawn] : drawn;
        if (lp != NULL && lp->kind == FS_LOGPROBS_PROCESSED) FS_SK(processed_logprobs)(s, &d, drawn, lp);
    }
    if (lp != NULL && lp->kind == FS_LOGPROBS_RAW) FS_SK(raw_logprobs)(s, x, token, lp);
    return token;
}

/* The sum of a row of probabilities, or -1 when one is negative or NaN:
 * one pass, lanes in the row dtype as in block_sum. */
static double FS_SK(probability_sum)(const FS_SR *q, ptrdiff_t n)
{
    const FS_SV zero = {0};
    FS_SV s0 = {0}, s1 = {0};
    FS_SI bad = {0};
    ptrdiff_t i = 0;
    for (; i + 2 * FS_SLANES <= n; i += 2 * FS_SLANES) {
        const FS_SV v0 = FS_SK(load)(q + i), v1 = FS_SK(load)(q + i + FS_SLANES);
        bad |= ~(v0 >= zero) | ~(v1 >= zero);
        s0 += v0;
        s1 += v1;
    }
    if (!FS_SK(none)(bad)) return -1.0;
    s0 += s1;
    double sum = 0.0;
    for (ptrdiff_t l = 0; l < FS_SLANES; l++) sum += (double)s0[l];
    for (; i < n; i++) {
        if (!(q[i] >= 0)) return -1.0;
        sum += (double)q[i];
    }
    return sum;
}

/* ---- verify_draft: one request -------------------------------------------------- */

/* The probability of row entry t under d, unnormalised (0 when filtered out). */
static double FS_SK(weight_of)(const fs_sampler *s, const FS_SK(dist) *d, int64_t t)
{
    ptrdiff_t j = t;
    if (d->index != NULL) {      /* index is increasing: a binary search */
        ptrdiff_t lo = 0, hi = d->len;
        while (lo < hi) {
            const ptrdiff_t mid = lo + (hi - lo) / 2;
            if (d->index[mid] < t) lo = mid + 1; else hi = mid;
        }
        if (lo == d->len || d->index[lo] != t) return 0.0;
        j = lo;
    }
    const FS_SR p = ((const FS_SR *)s->probs)[j];
    return p >= d->low && p > 0 ? (double)p : 0.0;
}

static ptrdiff_t FS_SK(verify)(fs_sampler *s, const FS_SR *x, ptrdiff_t k, const int64_t *draft, const FS_SR *q,
                               const fs_sample_row *row, const double *u, int64_t *tokens)
{
    const ptrdiff_t n = s->n;
    if (n == 0) return FS_SAMPLE_NOTHING;
    for (ptrdiff_t i = 0; i <= k; i++) tokens[i] = -1;
    for (ptrdiff_t i = 0; i < k; i++) {
        if (draft[i] < 0 || draft[i] >= n) return FS_SAMPLE_BAD_TOKEN;
        if (q != NULL) {
            const double total = FS_SK(probability_sum)(q + i * n, n);
            if (!(fabs(total - 1.0) <= FS_PROBS_TOLERANCE)) return FS_SAMPLE_BAD_PROBS;
        }
    }
    for (ptrdiff_t i = 0; i <= k; i++) {
        const FS_SR *xi = x + i * n;
        if (s->params.temperature == 0.0) {
            /* greedy: accept while the draft is the target's first maximum */
            const int64_t top = FS_SK(greedy)(s, xi);
            if (top < 0) return top;
            tokens[i] = top;
            if (i == k || draft[i] != top) return i;
            continue;
        }
        FS_SK(dist) d;
        const int status = FS_SK(prepare)(s, xi, row, &d);
        if (status < 0) return status;
        const FS_SR *probs = (const FS_SR *)s->probs;
        ptrdiff_t drawn;
        if (i == k) {            /* every draft accepted: the bonus token */
            drawn = FS_SK(draw)(probs, d.len, d.low, u[k], d.bound, s->block_sums);
            if (drawn < 0) return FS_SAMPLE_NOTHING;
            tokens[k] = d.index != NULL ? d.index[drawn] : drawn;
            return k;
        }
        const double mass = FS_SK(kept_mass)(probs, d.len, d.low);
        if (!(mass > 0.0)) return FS_SAMPLE_NOTHING;
        const int64_t t = draft[i];
        const double p_t = FS_SK(weight_of)(s, &d, t) / mass;
        const double q_t = q != NULL ? (double)q[i * n + t] : 1.0;
        if (u[i] * q_t < p_t) {  /* accepted with probability min(1, p / q) */
            tokens[i] = t;
            continue;
        }
        /* rejected: a draw from max(0, p - q), renormalised, with the last
         * uniform number (no acceptance test uses it) */
        FS_SR *residual = (FS_SR *)s->residual;
        memset(residual, 0, (size_t)n * sizeof *residual);
        for (ptrdiff_t j = 0; j < d.len; j++)
            if (probs[j] >= d.low && probs[j] > 0)
                residual[d.index != NULL ? d.index[j] : j] = (FS_SR)((double)probs[j] / mass);
        if (q != NULL) {
            const FS_SR *qi = q + i * n;
            for (ptrdiff_t v = 0; v < n; v++) {
                const FS_SR r = residual[v] - qi[v];
                residual[v] = r > 0 ? r : 0;
            }
        } else {
            residual[t] = 0;
        }
        const double left = FS_SK(total)(residual, n);
        if (left > 0.0) {
            drawn = FS_SK(draw)(residual, n, 0, u[k], left * (1.0 + FS_SUM_SLACK), s->block_sums);
        } else {                 /* p == q within rounding: rejection had probability 0 */
            drawn = FS_SK(draw)(probs, d.len, d.low, u[k], d.bound, s->block_sums);
            if (drawn >= 0 && d.index != NULL) drawn = d.index[drawn];
        }
        if (drawn < 0) return FS_SAMPLE_NOTHING;
        tokens[i] = drawn;
        return i;
    }
    return k;
}

#undef FS_SLANES
#undef FS_SSTEP
#undef FS_SR
#undef FS_SV
#undef FS_SI
#undef FS_SU
#undef FS_BUCKET_SHIFT
#undef FS_MOVEMASK
#undef FS_SK
