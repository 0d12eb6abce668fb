/* state-store.c: the on-fd layout of paddd's books (state-store.h): a checked header at
 * offset 0 naming the snapshot and where the journal starts, rewritten only by a
 * compaction; journal lines that carry their own check, so that an append is one write
 * and a reader takes the journal up to its first line that is not whole. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state-store.h"
#include "util.h"

#define STORE_MAGIC "PADDDBK1"
#define STORE_DATA_START 4096u          /* the header has the first page to itself */
#define STORE_ALIGN 4096u
#define STORE_JOURNAL_MIN (64u * 1024u) /* below this a journal is never compacted */
#define STORE_SIZE_MAX (256u << 20)     /* refuse to read more than this */

#define STORE_LINE_CHECK 10u           /* " *" and 8 hex digits before the newline */

typedef struct StoreHeader {
        char magic[8];
        uint64_t generation;
        uint64_t base_off, base_len;
        uint64_t log_off;
        uint64_t reserved;
        uint64_t check;                 /* FNV-1a of the fields above */
} StoreHeader;

struct StateStore {
        int fd;
        StoreHeader h;
        uint64_t log_len;               /* whole journal lines after h.log_off */
        bool torn;                      /* the file holds more past them: cut before appending */
};

static uint64_t fnv1a(const void *p, size_t n) {
        const unsigned char *c = p;
        uint64_t h = 0xcbf29ce484222325ULL;

        while (n--) {
                h ^= *c++;
                h *= 0x100000001b3ULL;
        }
        return h;
}

static uint64_t header_check(const StoreHeader *h) {
        return fnv1a(h, offsetof(StoreHeader, check));
}

/* A journal line's check: its text under this store's generation, so that a line left
 * from another layout of the file never passes. */
static uint32_t line_check(uint64_t generation, const char *text, size_t n) {
        uint64_t g = fnv1a(&generation, sizeof generation), h = fnv1a(text, n);

        return (uint32_t) ((g ^ h) ^ ((g ^ h) >> 32));
}

static uint64_t align_up(uint64_t v) {
        return (v + STORE_ALIGN - 1) / STORE_ALIGN * STORE_ALIGN;
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = pwrite(fd, c, n, (off_t) off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                c += k;
                n -= (size_t) k;
                off += (uint64_t) k;
        }
        return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off) {
        char *c = p;

        while (n > 0) {
                ssize_t k = pread(fd, c, n, (off_t) off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EBADMSG;        /* the header names more than the file has */
                c += k;
                n -= (size_t) k;
                off += (uint64_t) k;
        }
        return 0;
}

static int header_commit(StateStore *s, const StoreHeader *h) {
        StoreHeader n = *h;
        int r;

        n.generation = s->h.generation + 1;
        n.check = header_check(&n);
        r = pwrite_all(s->fd, &n, sizeof n, 0);
        if (r < 0)
                return r;
        s->h = n;
        return 0;
}

int state_store_new(int fd, StateStore **ret) {
        StateStore *s;

        s = calloc(1, sizeof(*s));
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        s->fd = fd;
        memcpy(s->h.magic, STORE_MAGIC, 8);
        s->h.base_off = s->h.log_off = STORE_DATA_START;
        *ret = s;
        return 0;
}

StateStore *state_store_free(StateStore *s) {
        if (!s)
                return NULL;
        safe_close(s->fd);
        free(s);
        return NULL;
}

static int read_range(int fd, uint64_t off, uint64_t len, char **ret) {
        _cleanup_free_ char *buf = malloc(MAX(len, (uint64_t) 1));
        int r;

        if (!buf)
                return -ENOMEM;
        r = pread_all(fd, buf, len, off);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

static bool header_valid(const StoreHeader *h) {
        return memcmp(h->magic, STORE_MAGIC, 8) == 0 && h->check == header_check(h) &&
               h->base_off >= STORE_DATA_START && h->log_off >= h->base_off + h->base_len &&
               h->base_len <= STORE_SIZE_MAX;
}

/* Move the whole, checked journal lines of raw[0..len) to the front without their checks;
 * returns the length of that text, and in *ret_used how much of raw they took. */
static size_t journal_unframe(uint64_t generation, char *raw, size_t len, size_t *ret_used) {
        size_t in = 0, out = 0;

        while (in < len) {
                char *nl = memchr(raw + in, '\n', len - in), *end;
                size_t n = nl ? (size_t) (nl - raw - in) : 0;
                unsigned long check;

                if (!nl || n <= STORE_LINE_CHECK || memcmp(raw + in + n - STORE_LINE_CHECK, " *", 2) != 0)
                        break;
                check = strtoul(raw + in + n - 8, &end, 16);
                if (end != nl || check != line_check(generation, raw + in, n - STORE_LINE_CHECK))
                        break;
                memmove(raw + out, raw + in, n - STORE_LINE_CHECK);
                out += n - STORE_LINE_CHECK;
                raw[out++] = '\n';
                in += n + 1;
        }
        *ret_used = in;
        return out;
}

int state_store_load(StateStore *s, StateBooks *ret, const char **ret_what) {
        _cleanup_free_ char *base = NULL, *log = NULL;
        StateBooks books = { .next_id = 1 };
        size_t log_text, log_used = 0;
        uint64_t log_raw;
        StoreHeader h;
        struct stat st;
        unsigned line;
        int r;

        *ret_what = NULL;
        if (fstat(s->fd, &st) < 0)
                return -errno;
        if (st.st_size == 0) {
                *ret = books;
                return 0;
        }
        r = pread_all(s->fd, &h, sizeof h, 0);
        if (r < 0 || !header_valid(&h)) {
                *ret_what = "the header is damaged";
                return r < 0 && r != -EBADMSG ? r : -EBADMSG;
        }
        log_raw = (uint64_t) st.st_size > h.log_off ? (uint64_t) st.st_size - h.log_off : 0;
        if (log_raw > STORE_SIZE_MAX) {
                *ret_what = "the journal is too long";
                return -EBADMSG;
        }
        r = read_range(s->fd, h.base_off, h.base_len, &base);
        if (r >= 0)
                r = read_range(s->fd, h.log_off, log_raw, &log);
        if (r < 0) {
                *ret_what = "the header names more than the file holds";
                return r;
        }
        log_text = journal_unframe(h.generation, log, log_raw, &log_used);
        r = state_apply(&books, base, h.base_len, true, &line);
        if (r < 0)
                *ret_what = "a snapshot record is damaged";
        else if ((r = state_apply(&books, log, log_text, false, &line)) < 0)
                *ret_what = "a journal record is damaged";
        if (r < 0) {
                state_books_done(&books);
                return r;
        }
        s->h = h;
        s->log_len = log_used;
        /* What follows the first line that is not whole is cut off before the next append:
         * written over in part, it could end where a whole line began again. */
        s->torn = (uint64_t) st.st_size > h.log_off + log_used;
        *ret = books;
        return 0;
}

int state_store_append(StateStore *s, const char *records, size_t len) {
        _cleanup_free_ char *framed = NULL;
        size_t n = 0, lines = 1;
        int r;

        /* Each line grows by its check, however short it is; sprintf adds a NUL. */
        for (const char *p = records; (p = memchr(p, '\n', len - (size_t) (p - records))); p++)
                lines++;
        framed = malloc(len + lines * STORE_LINE_CHECK + 2);
        if (!framed)
                return -ENOMEM;
        /* The first append to a new store commits the header it names. */
        if (s->h.generation == 0) {
                r = header_commit(s, &s->h);
                if (r < 0)
                        return r;
        }
        if (s->torn) {
                if (ftruncate(s->fd, (off_t) (s->h.log_off + s->log_len)) < 0)
                        return -errno;
                s->torn = false;
        }
        for (size_t pos = 0; pos < len;) {
                const char *nl = memchr(records + pos, '\n', len - pos);
                size_t k = nl ? (size_t) (nl - records - pos) : len - pos;

                memcpy(framed + n, records + pos, k);
                n += k;
                n += (size_t) sprintf(framed + n, " *%08x\n", line_check(s->h.generation, records + pos, k));
                pos += k + 1;
        }
        r = pwrite_all(s->fd, framed, n, s->h.log_off + s->log_len);
        if (r < 0)
                return r;
        s->log_len += n;
        return 0;
}

bool state_store_wants_snapshot(const StateStore *s) {
        return s->log_len > MAX((uint64_t) STORE_JOURNAL_MIN, 2 * s->h.base_len);
}

int state_store_write_snapshot(StateStore *s, const char *snapshot, size_t len) {
        uint64_t used_start = s->h.base_off, used_end = s->h.log_off + s->log_len, off;
        StoreHeader h = s->h;
        int r;

        /* At the start if it ends before what the header names now, else past all of it. */
        if (STORE_DATA_START + len <= used_start || used_end == STORE_DATA_START)
                off = STORE_DATA_START;
        else
                off = align_up(used_end);
        r = pwrite_all(s->fd, snapshot, len, off);
        if (r < 0)
                return r;
        h.base_off = off;
        h.base_len = len;
        h.log_off = align_up(off + len);
        r = header_commit(s, &h);
        if (r < 0)
                return r;
        s->log_len = 0;
        /* Past the new journal's start the file holds nothing of use any more. */
        if (ftruncate(s->fd, (off_t) h.log_off) < 0)
                return -errno;
        return 0;
}
