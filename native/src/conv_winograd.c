/* conv_winograd.c -- float32 3x3 convolutions (unit stride and dilation) by Winograd's
 * F(2x2, 3x3) with AVX-512, used by conv.c where it beats the direct loops.
 *
 * Each 2x2 block of outputs ("tile") comes from a 4x4 patch d of the zero-padded source:
 * Y = A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A, 16 multiplies per channel and tile where the
 * direct form needs 36. The work runs in three passes over chunks of WINO_LANES tiles:
 *   1. input transform: V[c][xi][tile] = (B^T d B)[xi], tiles of one tile-row in the lanes
 *      (the patch columns of 15 tiles are 32 source columns: two loads, even/odd permutes);
 *      padding and the source's edges are masked loads, so no padded copy is made;
 *   2. 16 products M[xi] (O x tiles) = U[xi] (O x C) V[xi] (C x tiles), 6 output channels by
 *      up to 4 vectors of tiles in registers;
 *   3. output transform: Y = A^T M A per tile, bias and ReLU, the tile columns interleaved
 *      into output rows and stored whole.
 * A tile's result depends on its own patch only: the bits do not depend on the batch, the
 * chunking or the thread count. The error is a few float32 roundings more than the direct
 * form's (the transforms' additions), well inside float32 tolerance. The weight gradient
 * (pf_wino_grad_weight, below) sums the same transforms' products over tiles instead.
 */
#include "conv_direct.h"

#include "internal.h"

#define WINO_LANES 64   /* tiles per chunk: 4 vectors */
#define WINO_OB 6       /* output channels per register block: 6 x (up to) 4 accumulators */
#define WINO_SEG 15     /* tiles per segment of a tile-row: 2 * 15 + 2 = 32 source columns */

static int64_t wino_blocks(int64_t O) { return (O + WINO_OB - 1) / WINO_OB; }

/* V is (C, 16, rows of WINO_ROW) and M (O, 16, WINO_ROW): a transform reads or writes one
 * channel's 16 vectors at fixed offsets from one pointer. A row has 16 lanes to spare, so the
 * input transform stores whole vectors (the next segment overwrites what spills), and a
 * channel's block is one cache line more than its size: at a power-of-two stride the 16
 * vectors of a transform fell in one L1 set and missed on every access (measured: the
 * transforms took twice as long). */
#define WINO_ROW (WINO_LANES + 16)
#define WINO_BLOCK (16 * WINO_ROW + 16)

/* U is (16, C, Opad), Opad = the output channels rounded up to whole register blocks: the
 * products broadcast a block's WINO_OB weights of one channel from one row. Where threads
 * split the output channels, each share [ob0, ob1) of the register blocks is a U of its own,
 * (16, C, (ob1 - ob0) * WINO_OB) at 16 * C * ob0 * WINO_OB: no cache line holds two shares'
 * weights (written on one core and read on another, a line costs more than its arithmetic). */
static int64_t wino_opad(int64_t O) { return wino_blocks(O) * WINO_OB; }

typedef struct { int64_t ob0, ob1, width; } wino_share;

static wino_share share_of(const pf_wino_geom *g, int64_t o_part, int64_t o_parts) {
    int64_t nob = wino_blocks(g->O);
    wino_share sh = {nob * o_part / o_parts, nob * (o_part + 1) / o_parts, 0};
    sh.width = (sh.ob1 - sh.ob0) * WINO_OB;
    return sh;
}

static float *share_base(const pf_wino_geom *g, const wino_share *sh, float *packed) {
    return packed + 16 * g->C * sh->ob0 * WINO_OB;
}

int64_t pf_wino_packed_floats(const pf_wino_geom *g) {
    return 16 * wino_opad(g->O) * g->C;
}

int64_t pf_wino_scratch_floats(const pf_wino_geom *g) {
    return (g->C + g->O) * WINO_BLOCK;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define WINO_TARGET __attribute__((target("avx512f")))

int pf_wino_available(void) { return __builtin_cpu_supports("avx512f"); }

/* U = G k G^T for 16 output channels at once (lanes = output channels), stored whole into U's
 * rows. The 9 taps of each of the 16 kernels are one short load (they are contiguous in both
 * orientations), turned into 9 tap vectors by a transpose in registers: the scalar form, one
 * kernel at a time with 16 scattered stores, took a sixth of a batch-1 inference of the
 * reference CNN, and a form with gather instructions was no faster on Zen 4. */
void WINO_TARGET pf_wino_pack(const pf_wino_geom *g, const float *w, int transposed,
                              int64_t w_channels, float *packed, int64_t o_part, int64_t o_parts) {
    wino_share sh = share_of(g, o_part, o_parts);
    int64_t o_begin = sh.ob0 * WINO_OB, ld = sh.width;
    packed = share_base(g, &sh, packed);
    /* between consecutive output channels' kernels; the tap order flips when transposed */
    int64_t stride = transposed ? 9 : g->C * 9;
    const __m512 half = _mm512_set1_ps(0.5f);
    const int64_t xstep = g->C * ld;     /* from one xi's rows to the next */
    for (int64_t c = 0; c < g->C; c++) {
        const float *wc = transposed ? w + c * w_channels * 9 : w + c * 9;
        for (int64_t o0 = o_begin; o0 < o_begin + ld; o0 += 16) {
            int64_t valid = g->O - o0 < 16 ? g->O - o0 : 16;
            int64_t width = o_begin + ld - o0 < 16 ? o_begin + ld - o0 : 16;
            __mmask16 store = (__mmask16)((1u << width) - 1);
            __m512 r[16];
            for (int l = 0; l < 16; l++)
                r[l] = l < valid ? _mm512_maskz_loadu_ps(0x1FF, wc + (o0 + l) * stride)
                                 : _mm512_setzero_ps();
            pf_transpose16(r);
            __m512 k[3][3], t[4][3];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) k[i][j] = r[transposed ? 8 - (i * 3 + j) : i * 3 + j];
            /* U = G k G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
            for (int j = 0; j < 3; j++) {
                t[0][j] = k[0][j];
                t[1][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(k[0][j], k[1][j]),
                                                            k[2][j]));
                t[2][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(k[0][j], k[1][j]),
                                                            k[2][j]));
                t[3][j] = k[2][j];
            }
            float *u = packed + c * ld + o0 - o_begin;
            for (int i = 0; i < 4; i++) {
                _mm512_mask_storeu_ps(u + (i * 4 + 0) * xstep, store, t[i][0]);
                _mm512_mask_storeu_ps(
                    u + (i * 4 + 1) * xstep, store,
                    _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2])));
                _mm512_mask_storeu_ps(
                    u + (i * 4 + 2) * xstep, store,
                    _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[i][0], t[i][1]), t[i][2])));
                _mm512_mask_storeu_ps(u + (i * 4 + 3) * xstep, store, t[i][2]);
            }
        }
    }
}

/* lanes [lo, hi) of 32 as two 16-lane masks */
static inline WINO_TARGET void lane_range(int64_t lo, int64_t hi, __mmask16 *m0, __mmask16 *m1) {
    uint32_t bits = 0;
    for (int64_t l = lo < 0 ? 0 : lo; l < hi && l < 32; l++) bits |= 1u << l;
    *m0 = (__mmask16)(bits & 0xFFFF);
    *m1 = (__mmask16)(bits >> 16);
}

typedef struct { int64_t img, th, tw0, ntw, lane; } wino_seg;

/* One source row of a segment, its columns transformed: r[j] = (d B)[j] for each tile, where
 * d is the tile's patch row (row sr of the source; zeros outside it). */
static inline __attribute__((always_inline)) WINO_TARGET void
load_row(const pf_wino_geom *g, const float *plane, const float *mplane, int64_t sr, int64_t sc0,
         __mmask16 m0, __mmask16 m1, __m512 r[4]) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    /* lane 15 of the shifted pairs would read column 32 or 33: segments stop at 15 tiles */
    const __m512i ev2 = _mm512_min_epi32(_mm512_add_epi32(ev, _mm512_set1_epi32(2)),
                                         _mm512_set1_epi32(31));
    const __m512i od2 = _mm512_min_epi32(_mm512_add_epi32(ev, _mm512_set1_epi32(3)),
                                         _mm512_set1_epi32(31));
    const __m512 zero = _mm512_setzero_ps();
    if (sr < 0 || sr >= g->h) {
        r[0] = r[1] = r[2] = r[3] = zero;
        return;
    }
    const float *p = plane + sr * g->w + sc0;
    __m512 lo = _mm512_maskz_loadu_ps(m0, p), hi = zero;
    if (m1) hi = _mm512_maskz_loadu_ps(m1, p + 16);   /* (none for segments of <= 7 tiles) */
    if (mplane) {   /* the gradient of a fused ReLU: keep where y > 0 */
        const float *q = mplane + sr * g->w + sc0;
        lo = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m0, q), zero,
                                                    _CMP_GT_OQ), lo);
        if (m1)
            hi = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m1, q + 16),
                                                        zero, _CMP_GT_OQ), hi);
    }
    __m512 d0 = _mm512_permutex2var_ps(lo, ev, hi), d1 = _mm512_permutex2var_ps(lo, od, hi);
    __m512 d2 = _mm512_permutex2var_ps(lo, ev2, hi), d3 = _mm512_permutex2var_ps(lo, od2, hi);
    r[0] = _mm512_sub_ps(d0, d2);
    r[1] = _mm512_add_ps(d1, d2);
    r[2] = _mm512_sub_ps(d2, d1);
    r[3] = _mm512_sub_ps(d1, d3);
}

/* Pass 1 for one segment: V[c][xi][lane] = (B^T d B)[xi] for its tiles, channel by channel
 * (the source read at one stride, as the hardware prefetches best). */
static WINO_TARGET void input_transform(const pf_wino_geom *g, const wino_seg *s,
                                        const float *src, const float *mask, float *V) {
    int64_t sc0 = 2 * s->tw0 - g->left;   /* the source column of the segment's first */
    __mmask16 m0, m1;
    lane_range(-sc0, g->w - sc0 < 2 * s->ntw + 2 ? g->w - sc0 : 2 * s->ntw + 2, &m0, &m1);
    int64_t plane_size = g->h * g->w;
    for (int64_t c = 0; c < g->C; c++) {
        __m512 r[4][4];
        const float *plane = src + c * plane_size;
        const float *mplane = mask ? mask + c * plane_size : NULL;
        for (int i = 0; i < 4; i++)
            load_row(g, plane, mplane, 2 * s->th + i - g->top, sc0, m0, m1, r[i]);
        float *vc = V + c * WINO_BLOCK + s->lane;
        for (int j = 0; j < 4; j++) {   /* B^T (d B); xi = i * 4 + j */
            float *out = vc + j * WINO_ROW;
            _mm512_storeu_ps(out, _mm512_sub_ps(r[0][j], r[2][j]));
            _mm512_storeu_ps(out + 4 * WINO_ROW, _mm512_add_ps(r[1][j], r[2][j]));
            _mm512_storeu_ps(out + 8 * WINO_ROW, _mm512_sub_ps(r[2][j], r[1][j]));
            _mm512_storeu_ps(out + 12 * WINO_ROW, _mm512_sub_ps(r[1][j], r[3][j]));
        }
    }
}

/* Pass 2: M[xi] (O x tiles) = U[xi] (O x C) V[xi] (C x tiles), for the register blocks
 * [ob0, ob1). NV vectors of tiles, as many as the chunk fills (a small plane's chunk is part
 * empty: the 36 tiles of an 11x11 output need 3), a constant after inlining so the 6 x NV
 * accumulators live in registers. */
static inline __attribute__((always_inline)) WINO_TARGET void
products_nv(const int NV, const pf_wino_geom *g, const float *U, const float *V, float *M,
            int64_t ob0, int64_t ob1) {
    int64_t ld = (ob1 - ob0) * WINO_OB;     /* U is the share's */
    for (int64_t xi = 0; xi < 16; xi++) {
        const float *vx = V + xi * WINO_ROW;
        float *mx = M + xi * WINO_ROW;
        for (int64_t ob = ob0; ob < ob1; ob++) {
            const float *u = U + xi * g->C * ld + (ob - ob0) * WINO_OB;
            __m512 a[WINO_OB][4];
#pragma GCC unroll 6
            for (int i = 0; i < WINO_OB; i++)
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) a[i][v] = _mm512_setzero_ps();
            for (int64_t c = 0; c < g->C; c++, u += ld) {
                const float *vc = vx + c * WINO_BLOCK;
                __m512 x[4];
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) x[v] = _mm512_loadu_ps(vc + 16 * v);
#pragma GCC unroll 6
                for (int i = 0; i < WINO_OB; i++) {
                    __m512 b = _mm512_set1_ps(u[i]);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; v++) a[i][v] = _mm512_fmadd_ps(b, x[v], a[i][v]);
                }
            }
            /* constant indices keep a[][] in registers */
#pragma GCC unroll 6
            for (int i = 0; i < WINO_OB; i++) {
                int64_t o = ob * WINO_OB + i;
                if (o >= g->O) break;
                float *m = mx + o * WINO_BLOCK;
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) _mm512_storeu_ps(m + 16 * v, a[i][v]);
            }
        }
    }
}

static WINO_TARGET void products(int nv, const pf_wino_geom *g, const float *U, const float *V,
                                 float *M, int64_t ob0, int64_t ob1) {
    switch (nv) {
    case 1: products_nv(1, g, U, V, M, ob0, ob1); break;
    case 2: products_nv(2, g, U, V, M, ob0, ob1); break;
    case 3: products_nv(3, g, U, V, M, ob0, ob1); break;
    default: products_nv(4, g, U, V, M, ob0, ob1); break;
    }
}

/* Pass 3 for one segment: A^T M A per tile, bias, ReLU, two output rows; with a fused 2x2 max
 * pool, a tile is one pooling window: its maximum, one pooled row. */
static WINO_TARGET void output_transform(const pf_wino_geom *g, const wino_seg *s, const float *M,
                                         const float *bias, int act, float *dst, int64_t o0,
                                         int64_t o1) {
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                            24, 8);
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 load = (__mmask16)((1u << s->ntw) - 1), st0, st1;
    int64_t col = 2 * s->tw0, n = g->OW - col < 2 * s->ntw ? g->OW - col : 2 * s->ntw;
    lane_range(0, n, &st0, &st1);
    int64_t P = g->OH * g->OW, row = 2 * s->th;
    int second = row + 1 < g->OH;
    int64_t PH = g->OH / 2, PW = g->OW / 2;
    if (g->pool && s->th >= PH) return;      /* the last tile row of an odd height: dropped */
    __mmask16 pooled = (__mmask16)((1u << (PW - s->tw0 < s->ntw ? PW - s->tw0 : s->ntw)) - 1);
    for (int64_t o = o0; o < o1; o++) {
        const float *m = M + o * WINO_BLOCK + s->lane;
        const int64_t step = WINO_ROW;
        __m512 sj[4], dj[4];
        for (int j = 0; j < 4; j++) {
            __m512 m0 = _mm512_maskz_loadu_ps(load, m + j * step);
            __m512 m1 = _mm512_maskz_loadu_ps(load, m + (4 + j) * step);
            __m512 m2 = _mm512_maskz_loadu_ps(load, m + (8 + j) * step);
            __m512 m3 = _mm512_maskz_loadu_ps(load, m + (12 + j) * step);
            sj[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            dj[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(sj[0], sj[1]), sj[2]), b);
        __m512 y01 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(sj[1], sj[2]), sj[3]), b);
        __m512 y10 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(dj[0], dj[1]), dj[2]), b);
        __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(dj[1], dj[2]), dj[3]), b);
        if (act == PF_ACT_RELU) {   /* max(v, 0) maps NaN to 0, as the other paths' ReLU does */
            y00 = _mm512_max_ps(y00, zero);
            y01 = _mm512_max_ps(y01, zero);
            y10 = _mm512_max_ps(y10, zero);
            y11 = _mm512_max_ps(y11, zero);
        }
        if (g->pool) {
            __m512 top = pf_max_nan(y00, y01), bottom = pf_max_nan(y10, y11);
            _mm512_mask_storeu_ps(dst + o * PH * PW + s->th * PW + s->tw0, pooled,
                                  pf_max_nan(top, bottom));
            continue;
        }
        float *out = dst + o * P + row * g->OW + col;
        _mm512_mask_storeu_ps(out, st0, _mm512_permutex2var_ps(y00, lo_idx, y01));
        _mm512_mask_storeu_ps(out + 16, st1, _mm512_permutex2var_ps(y00, hi_idx, y01));
        if (second) {
            _mm512_mask_storeu_ps(out + g->OW, st0, _mm512_permutex2var_ps(y10, lo_idx, y11));
            _mm512_mask_storeu_ps(out + g->OW + 16, st1, _mm512_permutex2var_ps(y10, hi_idx, y11));
        }
    }
}

static WINO_TARGET void run_chunk(const pf_wino_geom *g, const wino_seg *segs, int nseg,
                                  const float *src, const float *mask, int64_t src_image,
                                  const float *U, const float *bias, int act, float *dst,
                                  int64_t dst_image, float *V, float *M, int64_t ob0, int64_t ob1) {
    /* in lane order: a segment's whole-vector stores spill into the next one's lanes */
    for (int i = 0; i < nseg; i++)
        input_transform(g, &segs[i], src + segs[i].img * src_image,
                        mask ? mask + segs[i].img * src_image : NULL, V);
    int64_t lanes = segs[nseg - 1].lane + segs[nseg - 1].ntw;
    if (lanes % 16) {   /* the products read the last vector whole: its empty lanes finite */
        __mmask16 empty = (__mmask16)(0xFFFFu << (lanes % 16));
        for (int64_t c = 0; c < g->C; c++)
            for (int xi = 0; xi < 16; xi++)
                _mm512_mask_storeu_ps(V + c * WINO_BLOCK + xi * WINO_ROW + lanes / 16 * 16, empty,
                                      _mm512_setzero_ps());
    }
    products((int)((lanes + 15) / 16), g, U, V, M, ob0, ob1);
    int64_t o0 = ob0 * WINO_OB, o1 = ob1 * WINO_OB < g->O ? ob1 * WINO_OB : g->O;
    for (int i = 0; i < nseg; i++)
        output_transform(g, &segs[i], M, bias, act, dst + segs[i].img * dst_image, o0, o1);
}

void pf_wino_run(const pf_wino_geom *g, int64_t n, const float *src, const float *mask,
                 int64_t src_image, const float *packed, const float *bias, int act, float *dst,
                 int64_t dst_image, float *scratch, int64_t o_part, int64_t o_parts) {
    float *V = scratch, *M = scratch + g->C * WINO_BLOCK;
    wino_share sh = share_of(g, o_part, o_parts);
    int64_t ob0 = sh.ob0, ob1 = sh.ob1;
    if (ob0 >= ob1) return;
    packed = share_base(g, &sh, (float *)packed);
    /* tiles of 2x2 outputs; with the pool, only the whole windows (an odd edge row or column
     * of outputs belongs to no window: 25 tiles of an 11x11 output instead of 36) */
    int64_t th_n = g->pool ? g->OH / 2 : (g->OH + 1) / 2;
    int64_t tw_n = g->pool ? g->OW / 2 : (g->OW + 1) / 2;
    wino_seg segs[WINO_LANES];
    int nseg = 0;
    int64_t lane = 0;
    for (int64_t img = 0; img < n; img++)
        for (int64_t th = 0; th < th_n; th++)
            for (int64_t tw0 = 0; tw0 < tw_n; tw0 += WINO_SEG) {
                int64_t ntw = tw_n - tw0 < WINO_SEG ? tw_n - tw0 : WINO_SEG;
                if (lane + ntw > WINO_LANES) {
                    run_chunk(g, segs, nseg, src, mask, src_image, packed, bias, act, dst,
                              dst_image, V, M, ob0, ob1);
                    nseg = 0;
                    lane = 0;
                }
                segs[nseg++] = (wino_seg){img, th, tw0, ntw, lane};
                lane += ntw;
            }
    if (nseg)
        run_chunk(g, segs, nseg, src, mask, src_image, packed, bias, act, dst, dst_image, V, M,
                  ob0, ob1);
}

/* ---- the weight gradient: gw = G^T [ sum over tiles (A gy A^T) .* (B^T d B) ] G ----
 * (the forward's y = A^T [U .* V] A differentiated by U = G g G^T): per tile, 16 products
 * of each (input channel, output channel) pair where the direct form needs 36. V is the
 * forward's input transform (tiles in lanes); W = A gy A^T is formed from the transposed
 * output gradient (output channels in lanes, as pf_direct_transpose leaves it), so the
 * products M[xi][c][o] += V[c][xi][tile] * W[tile][xi][o] broadcast V and accumulate whole
 * vectors of output channels over the tiles, with no reduction across lanes. */
#define WINO_GW_CB_MAX 24    /* input channels per register block (24 / vectors of o) */

int64_t pf_wino_gw_acc_floats(const pf_wino_geom *g, int64_t lanes) {
    return 16 * (g->C + WINO_GW_CB_MAX) * lanes;
}

int64_t pf_wino_gw_scratch_floats(const pf_wino_geom *g, int64_t lanes) {
    return (g->C + WINO_GW_CB_MAX) * WINO_BLOCK + 16 * WINO_LANES * lanes;
}

/* W[lane][xi][o] = (A gy A^T)[xi] for the segment's tiles, from gyt (P, lanes): a tile's 16
 * rows are stored together (16 rows far apart, one per xi, missed the cache on every store);
 * the tile's outputs past the plane's edge are zeros. A = [1 0; 1 1; 1 -1; 0 -1]. */
static WINO_TARGET void gy_transform(const pf_wino_geom *g, const wino_seg *s, const float *gyt,
                                     int64_t lanes, float *W) {
    const __m512 zero = _mm512_setzero_ps();
    const int64_t xstep = lanes;
    for (int64_t k = 0; k < s->ntw; k++) {
        int64_t r0 = 2 * s->th, c0 = 2 * (s->tw0 + k);
        int row1 = r0 + 1 < g->OH, col1 = c0 + 1 < g->OW;
        const float *p = gyt + (r0 * g->OW + c0) * lanes;
        float *w = W + (s->lane + k) * 16 * lanes;
        for (int64_t o = 0; o < lanes; o += 16) {
            __m512 g00 = _mm512_loadu_ps(p + o);
            __m512 g01 = col1 ? _mm512_loadu_ps(p + lanes + o) : zero;
            __m512 g10 = row1 ? _mm512_loadu_ps(p + g->OW * lanes + o) : zero;
            __m512 g11 = row1 && col1 ? _mm512_loadu_ps(p + (g->OW + 1) * lanes + o) : zero;
            /* rows of A gy: [u, v] per row, then each row times A^T: [u, u + v, u - v, -v] */
            __m512 u[4] = {g00, _mm512_add_ps(g00, g10), _mm512_sub_ps(g00, g10),
                           _mm512_sub_ps(zero, g10)};
            __m512 v[4] = {g01, _mm512_add_ps(g01, g11), _mm512_sub_ps(g01, g11),
                           _mm512_sub_ps(zero, g11)};
            for (int i = 0; i < 4; i++) {
                float *wi = w + (4 * i) * xstep + o;
                _mm512_storeu_ps(wi, u[i]);
                _mm512_storeu_ps(wi + xstep, _mm512_add_ps(u[i], v[i]));
                _mm512_storeu_ps(wi + 2 * xstep, _mm512_sub_ps(u[i], v[i]));
                _mm512_storeu_ps(wi + 3 * xstep, _mm512_sub_ps(zero, v[i]));
            }
        }
    }
}

/* M[xi][c][o0 + ...] += sum over the chunk's tiles of V[c][xi][t] * W[t][xi][o0 + ...], NV
 * vectors of output channels and CB input channels in registers. */
static inline __attribute__((always_inline)) WINO_TARGET void
gw_products_nv(const int NV, const int CB, const pf_wino_geom *g, const float *V, const float *W,
               int64_t lanes, int64_t tiles, int64_t o0, float *M) {
    for (int64_t xi = 0; xi < 16; xi++) {
        const float *wx = W + xi * lanes + o0;
        for (int64_t c0 = 0; c0 < g->C; c0 += CB) {
            const float *vx = V + c0 * WINO_BLOCK + xi * WINO_ROW;
            __m512 acc[WINO_GW_CB_MAX][4];
#pragma GCC unroll 24
            for (int cb = 0; cb < CB; cb++)
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) acc[cb][v] = _mm512_setzero_ps();
            for (int64_t t = 0; t < tiles; t++) {
                __m512 w[4];
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_ps(wx + t * 16 * lanes + 16 * v);
#pragma GCC unroll 24
                for (int cb = 0; cb < CB; cb++) {
                    __m512 b = _mm512_set1_ps(vx[cb * WINO_BLOCK + t]);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; v++) acc[cb][v] = _mm512_fmadd_ps(b, w[v], acc[cb][v]);
                }
            }
            float *m = M + (xi * (g->C + WINO_GW_CB_MAX) + c0) * lanes + o0;
#pragma GCC unroll 24
            for (int cb = 0; cb < CB; cb++)
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) {
                    float *at = m + cb * lanes + 16 * v;
                    _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), acc[cb][v]));
                }
        }
    }
}

static WINO_TARGET void gw_products(const pf_wino_geom *g, const float *V, const float *W,
                                    int64_t lanes, int64_t tiles, float *M) {
    for (int64_t o0 = 0; o0 < lanes; o0 += 64) {
        int64_t nv = (lanes - o0) / 16 < 4 ? (lanes - o0) / 16 : 4;
        /* lanes are whole pairs of vectors: 2 or 4 vectors here. 24 accumulators; 4 x 4 where
         * the input channels are a multiple of 4 but not of 6 (32 channels in blocks of 6
         * multiplied 36) */
        if (nv == 2) gw_products_nv(2, 12, g, V, W, lanes, tiles, o0, M);
        else if (g->C % 6 && g->C % 4 == 0) gw_products_nv(4, 4, g, V, W, lanes, tiles, o0, M);
        else gw_products_nv(4, 6, g, V, W, lanes, tiles, o0, M);
    }
}

void pf_wino_gw_begin(const pf_wino_geom *g, float *scratch) {
    /* the channels past C that a last register block reads (the transforms never write them):
     * zeros, so that the unused sums they feed stay finite */
    memset(scratch + g->C * WINO_BLOCK, 0, (size_t)(WINO_GW_CB_MAX * WINO_BLOCK) * sizeof(float));
}

/* One chunk: the segments' input and output-gradient transforms, in lane order (a segment's
 * whole-vector stores spill into the next one's lanes), then their products. */
static WINO_TARGET void gw_chunk(const pf_wino_geom *g, const wino_seg *segs, int nseg,
                                 const float *src, const float *gyt, int64_t lanes, float *V,
                                 float *W, float *M) {
    for (int i = 0; i < nseg; i++) {
        input_transform(g, &segs[i], src, NULL, V);
        gy_transform(g, &segs[i], gyt, lanes, W);
    }
    gw_products(g, V, W, lanes, segs[nseg - 1].lane + segs[nseg - 1].ntw, M);
}

void pf_wino_grad_weight(const pf_wino_geom *g, const float *src, const float *gyt,
                         int64_t lanes, float *M, float *scratch) {
    float *V = scratch, *W = scratch + (g->C + WINO_GW_CB_MAX) * WINO_BLOCK;
    int64_t th_n = (g->OH + 1) / 2, tw_n = (g->OW + 1) / 2;
    wino_seg segs[WINO_LANES];
    int nseg = 0;
    int64_t lane = 0;
    for (int64_t th = 0; th < th_n; th++)
        for (int64_t tw0 = 0; tw0 < tw_n; tw0 += WINO_SEG) {
            int64_t ntw = tw_n - tw0 < WINO_SEG ? tw_n - tw0 : WINO_SEG;
            if (lane + ntw > WINO_LANES) {
                gw_chunk(g, segs, nseg, src, gyt, lanes, V, W, M);
                nseg = 0;
                lane = 0;
            }
            segs[nseg++] = (wino_seg){0, th, tw0, ntw, lane};
            lane += ntw;
        }
    if (nseg) gw_chunk(g, segs, nseg, src, gyt, lanes, V, W, M);
}

/* gw (O, C, 3, 3) of one group = G^T M G for each (o, c); M as pf_wino_grad_weight sums it.
 * G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]. */
void pf_wino_grad_weight_finish(const pf_wino_geom *g, const float *M, int64_t lanes,
                                float *gw) {
    int64_t cstep = lanes, xstep = (g->C + WINO_GW_CB_MAX) * lanes;
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t c = 0; c < g->C; c++) {
            float m[4][4], t[3][4];
            for (int xi = 0; xi < 16; xi++) m[xi / 4][xi % 4] = M[xi * xstep + c * cstep + o];
            for (int j = 0; j < 4; j++) {
                t[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
                t[1][j] = 0.5f * (m[1][j] - m[2][j]);
                t[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
            }
            float *out = gw + (o * g->C + c) * 9;
            for (int i = 0; i < 3; i++) {
                out[i * 3 + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);
                out[i * 3 + 1] = 0.5f * (t[i][1] - t[i][2]);
                out[i * 3 + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];
            }
        }
}
#else
int pf_wino_available(void) { return 0; }

int64_t pf_wino_gw_acc_floats(const pf_wino_geom *g, int64_t lanes) {
    (void)g; (void)lanes;
    return 0;
}
int64_t pf_wino_gw_scratch_floats(const pf_wino_geom *g, int64_t lanes) {
    (void)g; (void)lanes;
    return 0;
}
void pf_wino_gw_begin(const pf_wino_geom *g, float *scratch) { (void)g; (void)scratch; }
void pf_wino_grad_weight(const pf_wino_geom *g, const float *src, const float *gyt,
                         int64_t lanes, float *M, float *scratch) {
    (void)g; (void)src; (void)gyt; (void)lanes; (void)M; (void)scratch;
}
void pf_wino_grad_weight_finish(const pf_wino_geom *g, const float *M, int64_t lanes,
                                float *gw) {
    (void)g; (void)M; (void)lanes; (void)gw;
}
void pf_wino_pack(const pf_wino_geom *g, const float *w, int transposed, int64_t w_channels,
                  float *packed, int64_t o_part, int64_t o_parts) {
    (void)g; (void)w; (void)transposed; (void)w_channels; (void)packed; (void)o_part;
    (void)o_parts;
}
void pf_wino_run(const pf_wino_geom *g, int64_t n, const float *src, const float *mask,
                 int64_t src_image, const float *packed, const float *bias, int act, float *dst,
                 int64_t dst_image, float *scratch, int64_t o_part, int64_t o_parts) {
    (void)g; (void)n; (void)src; (void)mask; (void)src_image; (void)packed; (void)bias;
    (void)act; (void)dst; (void)dst_image; (void)scratch; (void)o_part; (void)o_parts;
}
#endif
