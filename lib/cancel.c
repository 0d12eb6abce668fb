/* cancel.c: the cancellation token of jobs. Requesting is one atomic store, so it may be
 * done from a signal handler; the runner and the memory jobs read it between chunks. */
#include "internal.h"

_public_ void pad_cancel_request(pad_cancel *c) {
        if (c)
                __atomic_store_n(&c->requested, 1, __ATOMIC_SEQ_CST);
}

_public_ void pad_cancel_reset(pad_cancel *c) {
        if (c)
                __atomic_store_n(&c->requested, 0, __ATOMIC_SEQ_CST);
}
