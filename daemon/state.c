/* state.c: formats and parses the records of paddd's books (state.h). Pure: no I/O, no
 * logging; every field read back is range-checked, so a damaged journal is refused at the
 * record that is wrong rather than trusted. */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "util.h"

#define TOKENS_MAX 12

void state_books_done(StateBooks *b) {
        free(b->leases);
        *b = (StateBooks) {};
}

/* ---- formatting ----------------------------------------------------------------------- */

static size_t format_placement(const BudgetPlacement *p, unsigned n, char *buf, size_t size) {
        size_t len = 0;

        if (n == 0)
                return (size_t) snprintf(buf, size, "-");
        for (unsigned i = 0; i < n && len < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%d:%u", i ? "," : "",
                                         p[i].node, p[i].helpers);
        return len;
}

static void format_hex(const char *s, char *buf) {
        static const char digits[] = "0123456789abcdef";
        size_t n = 0;

        if (!*s) {
                strcpy(buf, "-");
                return;
        }
        for (; *s; s++) {
                buf[n++] = digits[(unsigned char) *s >> 4];
                buf[n++] = digits[(unsigned char) *s & 15];
        }
        buf[n] = '\0';
}

size_t state_format_lease(const StateLease *l, char *buf) {
        char tag[2 * BROKER_TAG_MAX + 2], placement[STATE_RECORD_MAX];
        int n;

        format_hex(l->tag, tag);
        format_placement(l->placement, l->n_placement, placement, sizeof placement);
        n = snprintf(buf, STATE_RECORD_MAX, "L %" PRIu64 " %s %u %d %" PRIu64 " %" PRIu64 " %d %d %u %s %s\n",
                     l->id, l->owner, (unsigned) l->uid, (int) l->pid, l->start_time, l->ttl_deadline,
                     l->sched.policy, l->sched.nice, l->sched.rt_priority, tag, placement);
        assert(n > 0 && (size_t) n < STATE_RECORD_MAX);
        return (size_t) n;
}

size_t state_format_shrink(uint64_t id, const BudgetPlacement *p, unsigned n, char *buf) {
        char placement[STATE_RECORD_MAX - 32];
        int len;

        format_placement(p, n, placement, sizeof placement);
        len = snprintf(buf, STATE_RECORD_MAX, "G %" PRIu64 " %s\n", id, placement);
        assert(len > 0 && (size_t) len < STATE_RECORD_MAX);
        return (size_t) len;
}

size_t state_format_drop(uint64_t id, char *buf) {
        return (size_t) snprintf(buf, STATE_RECORD_MAX, "D %" PRIu64 "\n", id);
}

int state_format_snapshot(const StateBooks *books, char **ret, size_t *ret_len) {
        _cleanup_free_ char *text = NULL;
        size_t size = 128 + books->n_leases * STATE_RECORD_MAX, len;

        text = malloc(size);
        if (!text)
                return -ENOMEM;
        len = (size_t) snprintf(text, size, "B %s\n", books->bus_id[0] ? books->bus_id : "-");
        for (size_t i = 0; i < books->n_leases; i++)
                len += state_format_lease(&books->leases[i], text + len);
        len += (size_t) snprintf(text + len, size - len, "N %" PRIu64 "\n", books->next_id);
        *ret = TAKE_PTR(text);
        *ret_len = len;
        return 0;
}

/* ---- parsing -------------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        uint64_t v;

        if (*s < '0' || *s > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end || v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* In [min, max]; "-0" is 0. The magnitude is bounded before it is negated, so no value
 * read can overflow an int. */
static int parse_int(const char *s, int min, int max, int *ret) {
        uint64_t v;
        bool neg = *s == '-';

        if (parse_u64(s + neg, neg ? (min < 0 ? (uint64_t) -(int64_t) min : 0) : (uint64_t) max, &v) < 0)
                return -EBADMSG;
        *ret = neg ? (int) -(int64_t) v : (int) v;
        return 0;
}

static int parse_placement(const char *s, BudgetPlacement *p, unsigned *ret_n) {
        char buf[STATE_RECORD_MAX], *save = NULL;
        unsigned n = 0;

        *ret_n = 0;
        if (streq(s, "-"))
                return 0;
        snprintf(buf, sizeof buf, "%s", s);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(t, ':');
                uint64_t helpers;
                int node;

                if (!colon || n >= STATE_PLACEMENT_MAX)
                        return -EBADMSG;
                *colon = '\0';
                if (parse_int(t, 0, BROKER_NODE_ID_MAX, &node) < 0 ||
                    parse_u64(colon + 1, BROKER_HELPERS_MAX, &helpers) < 0 || helpers == 0)
                        return -EBADMSG;
                p[n++] = (BudgetPlacement) { .node = node, .helpers = (unsigned) helpers };
        }
        *ret_n = n;
        return 0;
}

static int parse_hex(const char *s, char *buf, size_t max) {
        size_t n = strlen(s);

        if (streq(s, "-")) {
                buf[0] = '\0';
                return 0;
        }
        if (n % 2 || n / 2 > max)
                return -EBADMSG;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;

                if (sscanf(s + 2 * i, "%2x", &v) != 1 || v == 0)
                        return -EBADMSG;
                buf[i] = (char) v;
        }
        buf[n / 2] = '\0';
        return 0;
}

static bool owner_valid(const char *s) {
        if (s[0] != ':' || strlen(s) > STATE_OWNER_MAX)
                return false;
        return strspn(s + 1, "0123456789.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-") ==
               strlen(s + 1);
}

static int parse_lease(char **tok, unsigned n, StateLease *l) {
        uint64_t v;

        if (n != 12)
                return -EBADMSG;
        *l = (StateLease) {};
        if (parse_u64(tok[1], UINT64_MAX - 1, &l->id) < 0 || l->id == 0 || !owner_valid(tok[2]))
                return -EBADMSG;
        strcpy(l->owner, tok[2]);
        if (parse_u64(tok[3], UINT32_MAX - 1, &v) < 0)
                return -EBADMSG;
        l->uid = (uid_t) v;
        if (parse_int(tok[4], 1, INT32_MAX, &l->pid) < 0 || l->pid < 1 ||
            parse_u64(tok[5], UINT64_MAX, &l->start_time) < 0 ||
            parse_u64(tok[6], UINT64_MAX, &l->ttl_deadline) < 0 ||
            parse_int(tok[7], 0, 7, &l->sched.policy) < 0 ||
            parse_int(tok[8], -20, 19, &l->sched.nice) < 0 ||
            parse_u64(tok[9], 99, &v) < 0)
                return -EBADMSG;
        l->sched.rt_priority = (unsigned) v;
        if (parse_hex(tok[10], l->tag, BROKER_TAG_MAX) < 0)
                return -EBADMSG;
        return parse_placement(tok[11], l->placement, &l->n_placement);
}

/* The index of id in books, or where it would go, by binary search. */
static size_t books_find(const StateBooks *b, uint64_t id, bool *ret_found) {
        size_t lo = 0, hi = b->n_leases;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (b->leases[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = lo < b->n_leases && b->leases[lo].id == id;
        return lo;
}

static int books_add(StateBooks *b, const StateLease *l) {
        bool found;
        size_t i = books_find(b, l->id, &found);

        /* A lease id is given out once: a second L of an id, or one below next_id that is not
         * new, means the records are not ours to trust. */
        if (found || i != b->n_leases || l->id < b->next_id)
                return -EBADMSG;
        if (b->n_leases == b->n_allocated) {
                size_t n = MAX(b->n_allocated * 2, (size_t) 16);
                StateLease *p = realloc(b->leases, n * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                b->leases = p;
                b->n_allocated = n;
        }
        b->leases[b->n_leases++] = *l;
        b->next_id = l->id + 1;
        return 0;
}

static int apply_record(StateBooks *b, char **tok, unsigned n, bool snapshot) {
        BudgetPlacement placement[STATE_PLACEMENT_MAX];
        unsigned n_placement;
        StateLease l;
        uint64_t id;
        bool found;
        size_t i;

        if (streq(tok[0], "B") && snapshot && n == 2) {
                if (!streq(tok[1], "-") && strlen(tok[1]) != 32)
                        return -EBADMSG;
                snprintf(b->bus_id, sizeof b->bus_id, "%s", streq(tok[1], "-") ? "" : tok[1]);
                return 0;
        }
        if (streq(tok[0], "N") && snapshot && n == 2) {
                if (parse_u64(tok[1], UINT64_MAX - 1, &id) < 0 || id < b->next_id)
                        return -EBADMSG;
                b->next_id = id;
                return 0;
        }
        if (streq(tok[0], "L"))
                return parse_lease(tok, n, &l) < 0 ? -EBADMSG : books_add(b, &l);
        if ((!streq(tok[0], "G") && !streq(tok[0], "D")) || n != (streq(tok[0], "G") ? 3u : 2u) ||
            parse_u64(tok[1], UINT64_MAX, &id) < 0)
                return -EBADMSG;
        i = books_find(b, id, &found);
        if (!found)
                return -EBADMSG;
        if (streq(tok[0], "D")) {
                memmove(b->leases + i, b->leases + i + 1, (b->n_leases - i - 1) * sizeof(*b->leases));
                b->n_leases--;
                return 0;
        }
        /* Parsed aside first: a bad placement leaves the lease as it was. */
        if (parse_placement(tok[2], placement, &n_placement) < 0)
                return -EBADMSG;
        memcpy(b->leases[i].placement, placement, n_placement * sizeof(*placement));
        b->leases[i].n_placement = n_placement;
        return 0;
}

int state_apply(StateBooks *books, const char *text, size_t len, bool snapshot, unsigned *ret_line) {
        unsigned line = 0;

        for (size_t pos = 0; pos < len;) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                char buf[STATE_RECORD_MAX], *tok[TOKENS_MAX], *save = NULL;
                size_t n = nl ? (size_t) (nl - text - pos) : len - pos;
                unsigned n_tok = 0;
                int r;

                line++;
                if (!nl || n >= sizeof buf || memchr(text + pos, '\0', n)) {
                        *ret_line = line;
                        return -EBADMSG;
                }
                memcpy(buf, text + pos, n);
                buf[n] = '\0';
                pos += n + 1;
                for (char *t = strtok_r(buf, " ", &save); t && n_tok < TOKENS_MAX; t = strtok_r(NULL, " ", &save))
                        tok[n_tok++] = t;
                r = n_tok == 0 ? -EBADMSG : apply_record(books, tok, n_tok, snapshot);
                if (r < 0) {
                        *ret_line = line;
                        return r;
                }
        }
        return 0;
}
