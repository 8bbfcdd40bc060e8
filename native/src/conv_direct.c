/* conv_direct.c -- direct float32 2-D convolution loops for AVX-512, without im2col.
 *
 * Output channels are the vector lanes: a tile is up to DIRECT_TILE consecutive outputs of
 * one output row times 32 (or 16) output channels, held in registers while the loop runs over
 * every (input channel, kernel row, kernel column): one broadcast of an input value feeds 2
 * FMAs. The input values of a tile sit at one offset (a table, `delta`) from the tile's
 * output row plus the output's column, so no column matrix is built and any channel count
 * or kernel size keeps the registers full. The loop runs kernel row by kernel row, so an
 * output row skips the kernel rows that would only read zero padding. Padding is the caller's: it copies the plane into
 * a padded one (conv.c), which is also how the input gradient of a stride-1 convolution runs
 * here, as a convolution of the padded output gradient with the flipped, transposed kernel.
 */
#include "conv_direct.h"

#include "internal.h"

#define DIRECT_LANES 32     /* output channels per block: two 16-float vectors */
#define DIRECT_TILE 14      /* outputs per tile: 2 x 14 accumulators of the 32 registers */

static int64_t delta_floats(int64_t rows) { return (rows + 15) & ~(int64_t)15; }

/* where kernel tap (c, kh, kw) reads, from the source position of its output */
static int32_t tap_offset(const pf_direct_geom *d, int64_t c, int64_t kh, int64_t kw) {
    return (int32_t)((c * d->H + kh * d->dil_h) * d->W + kw * d->dil_w);
}
static int64_t blocks(const pf_direct_geom *d) { return (d->O + DIRECT_LANES - 1) / DIRECT_LANES; }

int64_t pf_direct_packed_floats(const pf_direct_geom *d) {
    int64_t rows = d->C * d->KH * d->KW;
    return delta_floats(rows) + blocks(d) * rows * DIRECT_LANES;
}

void pf_direct_pack(const pf_direct_geom *d, const float *w, int transposed, int64_t w_channels,
                    float *packed) {
    int64_t k = d->KH * d->KW, rows = d->C * k;
    /* rows r = (kh, c, kw): the kernel rows of one output row are one range of r */
    int32_t *delta = (int32_t *)packed;
    for (int64_t kh = 0, r = 0; kh < d->KH; kh++)
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t kw = 0; kw < d->KW; kw++, r++) delta[r] = tap_offset(d, c, kh, kw);
    float *wts = packed + delta_floats(rows);
    for (int64_t b = 0; b < blocks(d); b++)
        for (int64_t r = 0; r < rows; r++) {
            float *lane = wts + (b * rows + r) * DIRECT_LANES;
            int64_t kh = r / (d->C * d->KW), c = r / d->KW % d->C, kw = r % d->KW;
            int64_t kk = kh * d->KW + kw;
            for (int64_t l = 0; l < DIRECT_LANES; l++) {
                int64_t o = b * DIRECT_LANES + l;
                if (o >= d->O) lane[l] = 0;
                else if (!transposed) lane[l] = w[(o * d->C + c) * k + kk];
                else lane[l] = w[(c * w_channels + o) * k + (k - 1 - kk)];
            }
        }
}

void pf_direct_pad(const float *src, const float *mask, int64_t C, int64_t h, int64_t w,
                   int64_t top, int64_t left, int64_t Hp, int64_t Wp, float *dst) {
    for (int64_t c = 0; c < C; c++) {
        float *plane = dst + c * Hp * Wp;
        memset(plane, 0, (size_t)(top * Wp) * sizeof(float));
        for (int64_t i = 0; i < h; i++) {
            float *line = plane + (top + i) * Wp;
            const float *from = src + (c * h + i) * w;
            memset(line, 0, (size_t)left * sizeof(float));
            if (mask) {
                const float *m = mask + (c * h + i) * w;
                for (int64_t j = 0; j < w; j++) line[left + j] = pf_keep_f32(m[j] > 0, from[j]);
            } else {
                memcpy(line + left, from, (size_t)w * sizeof(float));
            }
            memset(line + left + w, 0, (size_t)(Wp - left - w) * sizeof(float));
        }
        memset(plane + (top + h) * Wp, 0, (size_t)((Hp - top - h) * Wp) * sizeof(float));
    }
}

/* Spatial lanes: rows r = (c, kh, kw) in the kernel's own order; weights in blocks of
 * SPATIAL_OB output channels, (block, r, SPATIAL_OB), zero beyond O. */
#define SPATIAL_OB 8        /* output channels accumulated at once: 8 independent FMA chains */

int64_t pf_direct_spatial_packed_floats(const pf_direct_geom *d) {
    int64_t rows = d->C * d->KH * d->KW;
    return delta_floats(rows) + (d->O + SPATIAL_OB - 1) / SPATIAL_OB * rows * SPATIAL_OB;
}

void pf_direct_spatial_pack(const pf_direct_geom *d, const float *w, float *packed) {
    int64_t rows = d->C * d->KH * d->KW;
    int32_t *delta = (int32_t *)packed;
    for (int64_t c = 0, r = 0; c < d->C; c++)
        for (int64_t kh = 0; kh < d->KH; kh++)
            for (int64_t kw = 0; kw < d->KW; kw++, r++) delta[r] = tap_offset(d, c, kh, kw);
    float *wts = packed + delta_floats(rows);
    for (int64_t b = 0; b < (d->O + SPATIAL_OB - 1) / SPATIAL_OB; b++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < SPATIAL_OB; i++) {
                int64_t o = b * SPATIAL_OB + i;
                wts[(b * rows + r) * SPATIAL_OB + i] = o < d->O ? w[o * rows + r] : 0;
            }
}

int64_t pf_direct_lanes(int64_t O) { return (O + DIRECT_LANES - 1) / DIRECT_LANES * DIRECT_LANES; }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define DIRECT_TARGET __attribute__((target("avx512f")))

int pf_direct_available(void) { return __builtin_cpu_supports("avx512f"); }

/* Blocks of 16 channels by 16 positions: 16 row loads (the ReLU mask applied), a transpose in
 * registers, 16 stores; the transposed vectors' sum is the block's contribution to the 16
 * channels' sums. The scalar form, one element at a time, took a sixth of a batch-128
 * weight gradient of the reference CNN's second convolution. */
DIRECT_TARGET void pf_direct_transpose(const float *gy, const float *mask, int64_t O, int64_t P,
                                       float *gyt, float *sums) {
    int64_t lanes = pf_direct_lanes(O);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t o0 = 0; o0 < lanes; o0 += 16) {
        __m512 total = zero;
        for (int64_t p0 = 0; p0 < P; p0 += 16) {
            int64_t n = P - p0 < 16 ? P - p0 : 16;
            __mmask16 in = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int l = 0; l < 16; l++) {
                int64_t o = o0 + l;
                if (o >= O) { r[l] = zero; continue; }
                r[l] = _mm512_maskz_loadu_ps(in, gy + o * P + p0);
                if (mask)    /* the gradient of a fused ReLU: keep where y > 0 */
                    r[l] = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(
                        in, _mm512_maskz_loadu_ps(in, mask + o * P + p0), zero, _CMP_GT_OQ), r[l]);
            }
            pf_transpose16(r);
            for (int64_t l = 0; l < n; l++) {
                _mm512_storeu_ps(gyt + (p0 + l) * lanes + o0, r[l]);
                total = _mm512_add_ps(total, r[l]);
            }
        }
        if (sums) {
            int64_t n = O - o0 < 16 ? O - o0 : 16;
            if (n > 0) {
                __mmask16 m = (__mmask16)((1u << n) - 1);
                _mm512_mask_storeu_ps(sums + o0, m,
                                      _mm512_add_ps(_mm512_maskz_loadu_ps(m, sums + o0), total));
            }
        }
    }
}


/* The epilogue's view of a tile's outputs: output j of lane l goes to y[l * P + j]. */
typedef struct {
    float *y;
    int64_t P;
    __m512i index;              /* l * P for the 16 lanes of a vector */
    __m512 b0, b1;              /* bias of the two vectors' channels */
    __mmask16 m0, m1;           /* their channels that exist */
    int relu;
} tile_out;

/* T outputs by NV vectors of 16 output channels; T and NV are constants after inlining, so
 * the accumulators live in registers. Bias and ReLU are applied there and each vector is
 * scattered to its channels' planes (max(v, 0) also maps NaN to 0, as the other paths do). */
static inline __attribute__((always_inline)) DIRECT_TARGET void
tile(const int T, const int NV, const int SW, const float *row, const int32_t *delta,
     const float *wb, int64_t rows, const tile_out *o) {
    __m512 a0[DIRECT_TILE], a1[DIRECT_TILE];
#pragma GCC unroll 14
    for (int j = 0; j < T; j++) a0[j] = a1[j] = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *p = row + delta[r];
        __m512 w0 = _mm512_loadu_ps(wb + r * DIRECT_LANES);
        __m512 w1 = NV > 1 ? _mm512_loadu_ps(wb + r * DIRECT_LANES + 16) : w0;
#pragma GCC unroll 14
        for (int j = 0; j < T; j++) {
            __m512 v = _mm512_set1_ps(p[j * SW]);
            a0[j] = _mm512_fmadd_ps(v, w0, a0[j]);
            if (NV > 1) a1[j] = _mm512_fmadd_ps(v, w1, a1[j]);
        }
    }
    __m512 zero = _mm512_setzero_ps();
    float *y1 = o->y + 16 * o->P;
#pragma GCC unroll 14
    for (int j = 0; j < T; j++) {
        __m512 v = _mm512_add_ps(a0[j], o->b0);
        if (o->relu) v = _mm512_max_ps(v, zero);
        _mm512_mask_i32scatter_ps(o->y + j, o->m0, o->index, v, 4);
        if (NV > 1) {
            v = _mm512_add_ps(a1[j], o->b1);
            if (o->relu) v = _mm512_max_ps(v, zero);
            _mm512_mask_i32scatter_ps(y1 + j, o->m1, o->index, v, 4);
        }
    }
}

/* SW, the row stride, is 1 or 2: a constant in each copy */
#define TILE_CASE(T)                                                                           \
    case T:                                                                                    \
        if (NV > 1 && SW > 1) tile(T, 2, 2, row, delta, wb, rows, o);                          \
        else if (NV > 1) tile(T, 2, 1, row, delta, wb, rows, o);                               \
        else if (SW > 1) tile(T, 1, 2, row, delta, wb, rows, o);                               \
        else tile(T, 1, 1, row, delta, wb, rows, o);                                           \
        break;

static DIRECT_TARGET void run_tile(int T, int NV, int SW, const float *row,
                                   const int32_t *delta, const float *wb, int64_t rows,
                                   const tile_out *o) {
    switch (T) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
        TILE_CASE(7) TILE_CASE(8) TILE_CASE(9) TILE_CASE(10) TILE_CASE(11) TILE_CASE(12)
        TILE_CASE(13) TILE_CASE(14)
        default: break;
    }
}

static DIRECT_TARGET __mmask16 lanes(int64_t n) {
    return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

DIRECT_TARGET void pf_direct_run(const pf_direct_geom *d, const float *src, const float *packed,
                                 const float *bias, int act, float *dst) {
    int64_t rows = d->C * d->KH * d->KW, P = d->OH * d->OW, per_kh = d->C * d->KW;
    const int32_t *delta = (const int32_t *)packed;
    const float *wts = packed + delta_floats(rows);
    /* a row splits into near-equal tiles: 30 outputs run as 10 + 10 + 10, not 14 + 14 + 2 */
    int64_t segs = (d->OW + DIRECT_TILE - 1) / DIRECT_TILE;
    tile_out o;
    o.P = P;
    o.relu = act == PF_ACT_RELU;
    o.index = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3,
                                                  2, 1, 0), _mm512_set1_epi32((int)P));
    for (int64_t b = 0; b < blocks(d); b++) {
        int64_t o0 = b * DIRECT_LANES;
        int64_t valid = d->O - o0 < DIRECT_LANES ? d->O - o0 : DIRECT_LANES;
        o.m0 = lanes(valid);
        o.m1 = lanes(valid - 16);
        o.b0 = bias ? _mm512_maskz_loadu_ps(o.m0, bias + o0) : _mm512_setzero_ps();
        o.b1 = bias ? _mm512_maskz_loadu_ps(o.m1, bias + o0 + 16) : _mm512_setzero_ps();
        const float *wb = wts + b * rows * DIRECT_LANES;
        for (int64_t oh = 0; oh < d->OH; oh++) {
            const float *line = src + oh * d->st_h * d->W;
            /* kernel rows kh whose source row oh*st_h + kh*dil_h holds data */
            int64_t kh0 = 0, kh1 = d->KH;
            while (kh0 < kh1 && oh * d->st_h + kh0 * d->dil_h < d->data_top) kh0++;
            while (kh1 > kh0 && oh * d->st_h + (kh1 - 1) * d->dil_h >=
                                    d->data_top + d->data_rows) kh1--;
            int64_t r0 = kh0 * per_kh, nr = (kh1 - kh0) * per_kh;
            for (int64_t s = 0; s < segs; s++) {
                int64_t ow0 = d->OW * s / segs, T = d->OW * (s + 1) / segs - ow0;
                o.y = dst + o0 * P + oh * d->OW + ow0;
                run_tile((int)T, valid > 16 ? 2 : 1, d->st_w > 1 ? 2 : 1, line + ow0 * d->st_w,
                         delta + r0, wb + r0 * DIRECT_LANES, nr, &o);
            }
        }
    }
}

/* ---- spatial lanes ---- */

/* SPATIAL_OB output channels of `rows` output rows (1, or 2 for a fused pool) at 16 columns:
 * a[row][i], one vector per (row, channel); ROWS is a constant after inlining. */
static inline __attribute__((always_inline)) DIRECT_TARGET void
spatial_block(const int ROWS, const float *line, int64_t row_step, const int32_t *delta,
              const float *wb, int64_t rows, __mmask16 m, const __m512 *bv,
              __m512 a[2][SPATIAL_OB]) {
#pragma GCC unroll 8
    for (int i = 0; i < SPATIAL_OB; i++) a[0][i] = a[1][i] = bv[i];
    for (int64_t r = 0; r < rows; r++) {
        __m512 x0 = _mm512_maskz_loadu_ps(m, line + delta[r]);
        __m512 x1 = ROWS > 1 ? _mm512_maskz_loadu_ps(m, line + row_step + delta[r]) : x0;
        const float *wr = wb + r * SPATIAL_OB;
#pragma GCC unroll 8
        for (int i = 0; i < SPATIAL_OB; i++) {
            __m512 w = _mm512_set1_ps(wr[i]);
            a[0][i] = _mm512_fmadd_ps(x0, w, a[0][i]);
            if (ROWS > 1) a[1][i] = _mm512_fmadd_ps(x1, w, a[1][i]);
        }
    }
}

DIRECT_TARGET void pf_direct_spatial_run(const pf_direct_geom *d, const float *src,
                                         const float *packed, const float *bias, int act,
                                         float *dst, int64_t o_part, int64_t o_parts) {
    int64_t rows = d->C * d->KH * d->KW;
    const int32_t *delta = (const int32_t *)packed;
    const float *wts = packed + delta_floats(rows);
    const __m512 zero = _mm512_setzero_ps();
    const __m512i even = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 15, 13, 11, 9, 7, 5, 3, 1);
    int pool = d->pool == 2;
    int64_t PW = d->OW / 2, P = pool ? (d->OH / 2) * PW : d->OH * d->OW;
    int64_t out_rows = pool ? d->OH / 2 : d->OH;
    int64_t nob = (d->O + SPATIAL_OB - 1) / SPATIAL_OB;
    int64_t o_end = nob * (o_part + 1) / o_parts * SPATIAL_OB;
    for (int64_t o0 = nob * o_part / o_parts * SPATIAL_OB; o0 < o_end && o0 < d->O;
         o0 += SPATIAL_OB) {
        int64_t nv = d->O - o0 < SPATIAL_OB ? d->O - o0 : SPATIAL_OB;
        const float *wb = wts + o0 * rows;
        __m512 bv[SPATIAL_OB];
        for (int i = 0; i < SPATIAL_OB; i++)
            bv[i] = _mm512_set1_ps(bias && i < nv ? bias[o0 + i] : 0.0f);
        for (int64_t row = 0; row < out_rows; row++) {
            int64_t oh = pool ? 2 * row : row;
            const float *line = src + oh * d->st_h * d->W;
            for (int64_t ow0 = 0; ow0 < d->OW; ow0 += 16) {
                __mmask16 m = lanes(d->OW - ow0);
                __m512 a[2][SPATIAL_OB];
                if (pool)
                    spatial_block(2, line + ow0, d->st_h * d->W, delta, wb, rows, m, bv, a);
                else
                    spatial_block(1, line + ow0, 0, delta, wb, rows, m, bv, a);
                /* constant indices: a runtime bound would keep a[] in memory */
#pragma GCC unroll 8
                for (int i = 0; i < SPATIAL_OB; i++) {
                    if (i >= nv) break;
                    /* max(v, 0) maps NaN to 0, as the other paths' ReLU does */
                    __m512 v = act == PF_ACT_RELU ? _mm512_max_ps(a[0][i], zero) : a[0][i];
                    if (!pool) {
                        _mm512_mask_storeu_ps(dst + (o0 + i) * P + oh * d->OW + ow0, m, v);
                        continue;
                    }
                    __m512 v1 = act == PF_ACT_RELU ? _mm512_max_ps(a[1][i], zero) : a[1][i];
                    v = pf_max_nan(v, v1);   /* the block's two rows, then its two columns */
                    v = pf_max_nan(_mm512_permutexvar_ps(even, v), _mm512_permutexvar_ps(odd, v));
                    int64_t pc = ow0 / 2, n = PW - pc < 8 ? PW - pc : 8;
                    _mm512_mask_storeu_ps(dst + (o0 + i) * P + row * PW + pc, lanes(n), v);
                }
            }
        }
    }
}

/* One channel c and one block of 16 output channels: one accumulator per tap (KH x KW <= 16
 * taps), the row stride SW; all constants after inlining, so the accumulators stay in
 * registers. (3x3 at unit strides and dilations takes Winograd's weight gradient instead:
 * this loop gets 3x3 at stride 1 only with a row-direction stride or dilation.) */
static inline __attribute__((always_inline)) DIRECT_TARGET void
grad_weight_taps(const int KH, const int KW, const int SW, const pf_direct_geom *d,
                 const float *plane, const float *gyt, int64_t lanes, float *acc) {
    __m512 a[16];
#pragma GCC unroll 16
    for (int t = 0; t < KH * KW; t++) a[t] = _mm512_loadu_ps(acc + t * lanes);
    int64_t W = d->W, rstep = d->dil_h * W;
    for (int64_t oh = 0; oh < d->OH; oh++) {
        const float *x = plane + oh * d->st_h * W;
        const float *g = gyt + oh * d->OW * lanes;
        for (int64_t ow = 0; ow < d->OW; ow++, x += SW, g += lanes) {
            __m512 g0 = _mm512_loadu_ps(g);
#pragma GCC unroll 4
            for (int kh = 0; kh < KH; kh++)
#pragma GCC unroll 4
                for (int kw = 0; kw < KW; kw++)
                    a[kh * KW + kw] = _mm512_fmadd_ps(_mm512_set1_ps(x[kh * rstep + kw]), g0,
                                                      a[kh * KW + kw]);
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < KH * KW; t++) _mm512_storeu_ps(acc + t * lanes, a[t]);
}

#define GRAD_WEIGHT_TAPS(KH, KW, SW)                                                           \
    static DIRECT_TARGET void grad_weight_##KH##x##KW##_s##SW(                                 \
        const pf_direct_geom *d, const float *plane, const float *gyt, int64_t lanes,          \
        float *acc) {                                                                          \
        grad_weight_taps(KH, KW, SW, d, plane, gyt, lanes, acc);                               \
    }
GRAD_WEIGHT_TAPS(2, 2, 1)
GRAD_WEIGHT_TAPS(2, 2, 2)
GRAD_WEIGHT_TAPS(3, 3, 1)
GRAD_WEIGHT_TAPS(3, 3, 2)
GRAD_WEIGHT_TAPS(4, 4, 1)
GRAD_WEIGHT_TAPS(4, 4, 2)

typedef void (*grad_weight_fn)(const pf_direct_geom *, const float *, const float *, int64_t,
                               float *);

/* the 16-lane loop for a kernel shape and row stride, or NULL */
static grad_weight_fn grad_weight_loop(int64_t kh, int64_t kw, int64_t sw) {
    static const grad_weight_fn loops[3][2] = {{grad_weight_2x2_s1, grad_weight_2x2_s2},
                                               {grad_weight_3x3_s1, grad_weight_3x3_s2},
                                               {grad_weight_4x4_s1, grad_weight_4x4_s2}};
    if (kh != kw || kh < 2 || kh > 4 || sw < 1 || sw > 2) return NULL;
    return loops[kh - 2][sw - 1];
}

int pf_direct_grad_weight_fits(int64_t kh, int64_t kw, int64_t sw, int64_t dil_w) {
    return dil_w == 1 && grad_weight_loop(kh, kw, sw) != NULL;
}

void pf_direct_grad_weight(const pf_direct_geom *d, const float *src, const float *gyt,
                           float *acc) {
    int64_t lanes = pf_direct_lanes(d->O), taps = d->KH * d->KW;
    grad_weight_fn loop = grad_weight_loop(d->KH, d->KW, d->st_w);
    for (int64_t c = 0; c < d->C; c++)
        for (int64_t b = 0; b < lanes; b += 16)
            loop(d, src + c * d->H * d->W, gyt + b, lanes, acc + c * taps * lanes + b);
}
#else
void pf_direct_transpose(const float *gy, const float *mask, int64_t O, int64_t P, float *gyt,
                         float *sums) {
    int64_t lanes = pf_direct_lanes(O);
    for (int64_t o = 0; o < O; o++) {
        const float *row = gy + o * P, *m = mask ? mask + o * P : NULL;
        float lane[16] = {0};   /* 16 running sums: one would be add-latency bound */
        int64_t p = 0;
        for (; p + 16 <= P; p += 16)
            for (int l = 0; l < 16; l++) {
                float v = m ? pf_keep_f32(m[p + l] > 0, row[p + l]) : row[p + l];
                gyt[(p + l) * lanes + o] = v;
                lane[l] += v;
            }
        float total = 0;
        for (; p < P; p++) {
            float v = m ? pf_keep_f32(m[p] > 0, row[p]) : row[p];
            gyt[p * lanes + o] = v;
            total += v;
        }
        for (int l = 0; l < 16; l++) total += lane[l];
        if (sums) sums[o] += total;
    }
    for (int64_t p = 0; p < P; p++)
        for (int64_t o = O; o < lanes; o++) gyt[p * lanes + o] = 0;
}

int pf_direct_available(void) { return 0; }
int pf_direct_grad_weight_fits(int64_t kh, int64_t kw, int64_t sw, int64_t dil_w) {
    (void)kh; (void)kw; (void)sw; (void)dil_w;
    return 0;
}
void pf_direct_grad_weight(const pf_direct_geom *d, const float *src, const float *gyt,
                           float *acc) {
    (void)d; (void)src; (void)gyt; (void)acc;
}
void pf_direct_run(const pf_direct_geom *d, const float *src, const float *packed,
                   const float *bias, int act, float *dst) {
    (void)d; (void)src; (void)packed; (void)bias; (void)act; (void)dst;
}
void pf_direct_spatial_run(const pf_direct_geom *d, const float *src, const float *packed,
                           const float *bias, int act, float *dst, int64_t o_part,
                           int64_t o_parts) {
    (void)d; (void)src; (void)packed; (void)bias; (void)act; (void)dst; (void)o_part;
    (void)o_parts;
}
#endif
