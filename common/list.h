/* list.h: intrusive doubly linked lists, in the style of systemd's LIST_* macros.
 * An item embeds a LIST_FIELDS(type, name) member; a head is a plain pointer. */
#pragma once

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                  \
        do {                                                            \
                __typeof__(*(head)) **_h = &(head), *_i = (item);       \
                if ((_i->name##_next = *_h))                            \
                        _i->name##_next->name##_prev = _i;              \
                _i->name##_prev = NULL;                                 \
                *_h = _i;                                               \
        } while (0)

#define LIST_APPEND(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_h = &(head), *_i = (item), *_t;  \
                _i->name##_next = NULL;                                 \
                if (!*_h) {                                             \
                        _i->name##_prev = NULL;                         \
                        *_h = _i;                                       \
                } else {                                                \
                        for (_t = *_h; _t->name##_next; _t = _t->name##_next) \
                                ;                                       \
                        _t->name##_next = _i;                           \
                        _i->name##_prev = _t;                           \
                }                                                       \
        } while (0)

#define LIST_REMOVE(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_h = &(head), *_i = (item);       \
                if (_i->name##_next)                                    \
                        _i->name##_next->name##_prev = _i->name##_prev; \
                if (_i->name##_prev)                                    \
                        _i->name##_prev->name##_next = _i->name##_next; \
                else                                                    \
                        *_h = _i->name##_next;                          \
                _i->name##_next = _i->name##_prev = NULL;               \
        } while (0)

#define LIST_FOREACH(name, i, head) \
        for (__typeof__(head) i = (head); i; i = i->name##_next)

#define LIST_FOREACH_SAFE(name, i, n, head) \
        for (__typeof__(head) i = (head), n = i ? i->name##_next : NULL; i; \
             i = n, n = i ? i->name##_next : NULL)

/* Lists that also keep a tail pointer, for O(1) appends (FIFO queues, id-ordered lists). */
#define LIST_APPEND_TAIL(name, head, tail, item)                        \
        do {                                                            \
                __typeof__(*(head)) **_h = &(head), **_t = &(tail), *_i = (item); \
                _i->name##_next = NULL;                                 \
                _i->name##_prev = *_t;                                  \
                if (*_t)                                                \
                        (*_t)->name##_next = _i;                        \
                else                                                    \
                        *_h = _i;                                       \
                *_t = _i;                                               \
        } while (0)

#define LIST_REMOVE_TAIL(name, head, tail, item)                        \
        do {                                                            \
                if ((tail) == (item))                                   \
                        (tail) = (item)->name##_prev;                   \
                LIST_REMOVE(name, head, item);                          \
        } while (0)
