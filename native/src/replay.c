/* replay.c -- eager replays: the kernel calls an op made on its first call with given shapes,
 * dtypes and attributes, run again on new memory with only the data pointers changed
 * (pyfront/ops/core.py). One native call per eager op instead of a Python loop that patches
 * each descriptor and calls pf_run per kernel: that loop was a large share of an eager op's
 * cost on small tensors. */
#include "internal.h"

int pf_replay_run(const pf_replay *r) {
    PF_CHECK(r != NULL && (r->n_patches == 0 || (r->patches != NULL && r->buffers != NULL)),
             PF_ERR_ARGUMENT, "replay: null replay, patches or buffers");
    for (int32_t i = 0; i < r->n_patches; i++) {
        const pf_patch *p = &r->patches[i];
        PF_CHECK(p->desc != NULL && p->buffer >= 0 && p->buffer < r->n_buffers, PF_ERR_ARGUMENT,
                 "replay: patch %d has no descriptor or names no buffer", (int)i);
        p->desc->data = (char *)r->buffers[p->buffer] + p->offset;
    }
    return pf_run_steps(r->steps, 0, r->n_steps, NULL);
}
