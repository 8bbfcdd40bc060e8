/* conv_direct.h -- direct float32 2-D convolution loops for AVX-512 (conv_direct.c), used by
 * conv.c where they beat im2col + BLAS. Not part of the ABI. */
#ifndef PF_CONV_DIRECT_H
#define PF_CONV_DIRECT_H

#include <stdint.h>

/* One group of a 2-D convolution with unit stride along the width, over a source plane that
 * is already padded (the caller copies it when the convolution pads). */
typedef struct {
    int64_t C, O;        /* source and output channels of one group */
    int64_t H, W;        /* the source plane as stored */
    int64_t OH, OW;      /* the output plane */
    int64_t KH, KW;      /* kernel */
    int64_t st_h, dil_h, dil_w;
    int64_t data_top, data_rows;   /* the rows of the plane that are not zero padding */
    int64_t pool;        /* spatial lanes only: 2 = dst is the 2x2/2 max pool of the output */
    int64_t st_w;        /* the row stride, 1 or 2: channel-lane forward and weight gradient
                            (1 elsewhere) */
} pf_direct_geom;

/* Whether this CPU runs the direct loops (AVX-512F). */
int pf_direct_available(void);

/* Floats of the packed form of one group's weights (with the source offsets it carries). */
int64_t pf_direct_packed_floats(const pf_direct_geom *d);

/* Packs one group's weights. Forward: w is (O, C, KH, KW) at `w` with channel stride
 * C*KH*KW. Transposed (the input gradient as a convolution of the output gradient): w is the
 * forward kernel (C', O', KH, KW) whose roles swap: the output channels here are the forward's
 * input channels, and the kernel is flipped in both spatial dims. For transposed, `w` points
 * at the group's first forward output channel and `w_channels` is the forward kernel's
 * per-group input channel count (the row length of its channel dimension). */
void pf_direct_pack(const pf_direct_geom *d, const float *w, int transposed, int64_t w_channels,
                    float *packed);

/* dst (O, OH, OW) = act(conv(src (C, H, W), packed) + bias); act is PF_ACT_NONE or RELU;
 * bias may be NULL. */
void pf_direct_run(const pf_direct_geom *d, const float *src, const float *packed,
                   const float *bias, int act, float *dst);

/* The weight gradient, accumulated: acc (C, KH, KW, Opad) += sum over outputs p of
 * gyt[p][o] * src[c, the input of p at (kh, kw)], where gyt (OH*OW, Opad) is one image's
 * output gradient transposed with pf_direct_transpose and Opad = pf_direct_lanes(O). For the
 * kernel shapes, row strides and width dilations pf_direct_grad_weight_fits accepts: 2x2,
 * 3x3 and 4x4 at row stride 1 or 2, width dilation 1. */
int pf_direct_grad_weight_fits(int64_t kh, int64_t kw, int64_t sw, int64_t dil_w);
void pf_direct_grad_weight(const pf_direct_geom *d, const float *src, const float *gyt,
                           float *acc);
int64_t pf_direct_lanes(int64_t O);

/* ---- spatial lanes: forward kernels with few rows (C*KH*KW), where the channel-lane tiles
 * above have too little work per tile. 16 consecutive outputs of one output row are the
 * lanes, 8 output channels accumulate at once. ---- */

/* Floats of the packed form of one group's weights for pf_direct_spatial_run. */
int64_t pf_direct_spatial_packed_floats(const pf_direct_geom *d);

/* Packs one group's forward kernel w (O, C, KH, KW). */
void pf_direct_spatial_pack(const pf_direct_geom *d, const float *w, float *packed);

/* dst (O, OH, OW) = act(conv(src (C, H, W), packed) + bias), as pf_direct_run; with pool,
 * dst (O, OH / 2, OW / 2) holds the maxima of its 2x2 blocks (a NaN wins). Only the output
 * channels of share o_part of o_parts (whole register blocks), so that threads can split one
 * image. */
void pf_direct_spatial_run(const pf_direct_geom *d, const float *src, const float *packed,
                           const float *bias, int act, float *dst, int64_t o_part,
                           int64_t o_parts);

/* ---- Winograd F(2x2, 3x3) (conv_winograd.c): 3x3 kernels, unit stride and dilation ---- */
typedef struct {
    int64_t C, O;        /* source and output channels of one group */
    int64_t h, w;        /* the source plane as stored */
    int64_t top, left;   /* where it sits in the zero-padded plane the kernel slides over */
    int64_t OH, OW;      /* the output plane */
    int64_t pool;        /* 2 = dst is the 2x2/2 max pool of the output (OH / 2, OW / 2) */
} pf_wino_geom;

int pf_wino_available(void);
/* Floats of one group's transformed weights, and of the scratch pf_wino_run needs. */
int64_t pf_wino_packed_floats(const pf_wino_geom *g);
int64_t pf_wino_scratch_floats(const pf_wino_geom *g);
/* Transforms one group's kernel, oriented as pf_direct_pack's (transposed: the input gradient
 * as a convolution with the flipped kernel whose channel roles swap); only the output channels
 * of share o_part of o_parts, as pf_wino_run splits them, so that the thread that reads a
 * share writes it (written on one core and read on another, a batch-1 pack took 3x longer). */
void pf_wino_pack(const pf_wino_geom *g, const float *w, int transposed, int64_t w_channels,
                  float *packed, int64_t o_part, int64_t o_parts);
/* For images i < n: dst + i * dst_image (O, OH, OW) = act(conv(src + i * src_image (C, h, w))
 * + bias), the source kept only where mask (same layout) is > 0 when mask is given; only the
 * output channels of share o_part of o_parts (whole register blocks; a share can be empty),
 * so that threads can split one image. */
void pf_wino_run(const pf_wino_geom *g, int64_t n, const float *src, const float *mask,
                 int64_t src_image, const float *packed, const float *bias, int act, float *dst,
                 int64_t dst_image, float *scratch, int64_t o_part, int64_t o_parts);

/* The weight gradient by Winograd (conv_winograd.c): for one image and group, M += the
 * products of the source's tiles (src (C, h, w)) and the output gradient's (gyt (OH * OW,
 * lanes), transposed and masked by pf_direct_transpose); M holds
 * pf_wino_gw_acc_floats(g, lanes) floats, zeroed before the first image, and the scratch
 * pf_wino_gw_scratch_floats, readied once by pf_wino_gw_begin; then
 * pf_wino_grad_weight_finish writes gw (O, C, 3, 3) from the sum of the parts' M. */
int64_t pf_wino_gw_acc_floats(const pf_wino_geom *g, int64_t lanes);
int64_t pf_wino_gw_scratch_floats(const pf_wino_geom *g, int64_t lanes);
void pf_wino_gw_begin(const pf_wino_geom *g, float *scratch);
void pf_wino_grad_weight(const pf_wino_geom *g, const float *src, const float *gyt,
                         int64_t lanes, float *M, float *scratch);
void pf_wino_grad_weight_finish(const pf_wino_geom *g, const float *M, int64_t lanes,
                                float *gw);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#include <math.h>
/* max(a, b) where a NaN in either wins, as max pooling's rule: the fused pools of both loop
 * families */
static inline __attribute__((target("avx512f"), always_inline)) __m512
pf_max_nan(__m512 a, __m512 b) {
    __mmask16 nan = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) |
                    _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
    return _mm512_mask_mov_ps(_mm512_max_ps(a, b), nan, _mm512_set1_ps(NAN));
}

/* r[l] <- lane l of every r[i]: a 16x16 transpose in registers */
static inline __attribute__((target("avx512f"), always_inline)) void pf_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* r[i + m], m < 4: in each 128-bit quarter q, column 4q + m of rows i..i+3 */
    for (int i = 0; i < 16; i += 4)
        for (int k = 0; k < 2; k++) {
            __m512d a = _mm512_castps_pd(t[i + k]), b = _mm512_castps_pd(t[i + k + 2]);
            r[i + 2 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[i + 2 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    /* gather quarter q of the four row groups: rows 0-3 with 4-7, 8-11 with 12-15, then the
     * pairs together */
    for (int i = 0; i < 8; i++) {
        int lo = (i / 4) * 8 + i % 4;
        t[lo] = _mm512_shuffle_f32x4(r[lo], r[lo + 4], 0x88);
        t[lo + 4] = _mm512_shuffle_f32x4(r[lo], r[lo + 4], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}
#endif

/* gyt (P, Opad) = gy (O, P) transposed, zero beyond O; only where mask (O, P) is > 0 when it
 * is given. sums[o] += the sum of row o of what was kept, when sums is not NULL. */
void pf_direct_transpose(const float *gy, const float *mask, int64_t O, int64_t P, float *gyt,
                         float *sums);

/* dst (C, Hp, Wp) = src (C, h, w) placed at (top, left) with zeros around it; where mask is
 * given (same shape as src), only elements whose mask is > 0 are kept. */
void pf_direct_pad(const float *src, const float *mask, int64_t C, int64_t h, int64_t w,
                   int64_t top, int64_t left, int64_t Hp, int64_t Wp, float *dst);

#endif
