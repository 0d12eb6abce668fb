/* config.c: paddd's configuration. Owns the built-in defaults, parsing one INI text with
 * libinih (fed line by line through a reader that counts lines, drops comments and leading
 * whitespace and checks each line's shape, so every error carries its line), loading the
 * embedded default, the main file and the drop-ins in order, and resolving the result
 * into BudgetLimits against a topology. It reads files but never logs: each problem is
 * returned once as "file:line: what". */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "parse.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_GROUP_NAME_MAX 32u
#define CONFIG_SHOW_MAX 64      /* characters of a bad value or line quoted in a message */
#define BUILTIN_NAME "<built-in paddd.conf>"

typedef enum ConfigKey {
        KEY_MAX_HELPERS,
        KEY_MAX_HELPERS_PER_NODE,
        KEY_MAX_HELPERS_PER_USER,
        KEY_MAX_LEASES_PER_CLIENT,
        KEY_MAX_LEASES_PER_USER,
        KEY_MAX_WAITING,
        KEY_MAX_WAITING_PER_USER,
        KEY_MAX_WAIT_USEC,
        KEY_HELPER_POLICY,
        KEY_ADMIN_GROUP,
        _KEY_MAX,
} ConfigKey;

static const char *const key_names[_KEY_MAX] = {
        [KEY_MAX_HELPERS] = "MaxHelpers",
        [KEY_MAX_HELPERS_PER_NODE] = "MaxHelpersPerNode",
        [KEY_MAX_HELPERS_PER_USER] = "MaxHelpersPerUser",
        [KEY_MAX_LEASES_PER_CLIENT] = "MaxLeasesPerClient",
        [KEY_MAX_LEASES_PER_USER] = "MaxLeasesPerUser",
        [KEY_MAX_WAITING] = "MaxWaiting",
        [KEY_MAX_WAITING_PER_USER] = "MaxWaitingPerUser",
        [KEY_MAX_WAIT_USEC] = "MaxWaitUSec",
        [KEY_HELPER_POLICY] = "HelperPolicy",
        [KEY_ADMIN_GROUP] = "AdminGroup",
};

typedef enum SectionKind {
        SECTION_NONE,   /* before the first header */
        SECTION_BROKER,
        SECTION_NODE,
} SectionKind;

/* A section header seen in the current text, for duplicate detection. */
typedef struct SeenSection {
        SectionKind kind;
        int node;
        unsigned line;
} SeenSection;

typedef struct ParseState {
        Config *config;
        const char *name;
        const char *pos;                /* next unread byte of the text */
        unsigned line;                  /* line last handed to libinih */

        SectionKind section;
        unsigned node_index;            /* into config->nodes, for SECTION_NODE */
        char section_text[CONFIG_SHOW_MAX + 16];
        unsigned key_line[_KEY_MAX];    /* where each key was set in this section; 0: not */

        SeenSection *seen;
        unsigned n_seen;

        int error;                      /* 0, -EINVAL or -ENOMEM */
        unsigned error_line;
        char *error_text;
} ParseState;

int config_new(Config **ret) {
        Config *c;

        if (!ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Config) {
                .max_helpers = { .value = 80, .percent = true },
                .max_helpers_per_node = { .value = 80, .percent = true },
                .max_helpers_per_user = 0,
                .max_leases_per_client = 64,
                .max_leases_per_user = 1024,
                .max_waiting = 256,
                .max_waiting_per_user = 32,
                .max_wait_usec = 20000000,
                .helper_policy = HELPER_POLICY_IDLE,
        };
        *ret = c;
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (unsigned i = 0; i < c->n_nodes; i++)
                free(c->nodes[i].file);
        free(c->nodes);
        free(c->admin_group);
        free(c);
        return NULL;
}

/* Record the first error at the current line; later ones are dropped. Returns 0, the
 * libinih handler's "failed". */
_printf_(2, 3)
static int state_fail(ParseState *s, const char *fmt, ...) {
        va_list ap;

        if (s->error)
                return 0;
        s->error = -EINVAL;
        s->error_line = s->line;
        va_start(ap, fmt);
        if (vasprintf(&s->error_text, fmt, ap) < 0) {
                s->error_text = NULL;
                s->error = -ENOMEM;
        }
        va_end(ap);
        return 0;
}

static int state_oom(ParseState *s) {
        if (!s->error) {
                s->error = -ENOMEM;
                s->error_line = s->line;
        }
        return 0;
}

static bool is_blank(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Find or add the ConfigNode for id; its index in *ret_index. */
static int config_node_get(Config *c, int id, unsigned *ret_index) {
        ConfigNode *n;

        for (unsigned i = 0; i < c->n_nodes; i++)
                if (c->nodes[i].node == id) {
                        *ret_index = i;
                        return 0;
                }
        n = reallocarray(c->nodes, c->n_nodes + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        c->nodes = n;
        c->nodes[c->n_nodes] = (ConfigNode) { .node = id };
        *ret_index = c->n_nodes++;
        return 0;
}

static const SeenSection *state_find_seen(const ParseState *s, SectionKind kind, int node) {
        for (unsigned i = 0; i < s->n_seen; i++)
                if (s->seen[i].kind == kind && (kind != SECTION_NODE || s->seen[i].node == node))
                        return &s->seen[i];
        return NULL;
}

/* Enter the section named by inner (the text between the brackets). 0 or the handler's
 * failure (error recorded). */
static int state_enter_section(ParseState *s, const char *inner) {
        SectionKind kind;
        const SeenSection *prev;
        SeenSection *seen;
        int node = -1;

        if (streq(inner, "Broker"))
                kind = SECTION_BROKER;
        else if (strncmp(inner, "Node ", 5) == 0) {
                uint64_t v;
                int r = parse_unsigned(inner + 5, BROKER_NODE_ID_MAX, &v);

                if (r == -ERANGE)
                        return state_fail(s, "[%s]: node number out of range (0..%u)", inner,
                                          BROKER_NODE_ID_MAX);
                if (r < 0)
                        return state_fail(s, "[%s]: \"%.*s\" is not a node number", inner,
                                          CONFIG_SHOW_MAX, inner + 5);
                kind = SECTION_NODE;
                node = (int) v;
        } else
                return state_fail(s, "[%s]: unknown section (expected [Broker] or [Node N])", inner);

        prev = state_find_seen(s, kind, node);
        if (prev)
                return state_fail(s, "[%s]: duplicate section (already on line %u)", inner,
                                  prev->line);

        seen = reallocarray(s->seen, s->n_seen + 1, sizeof(*seen));
        if (!seen)
                return state_oom(s);
        s->seen = seen;
        s->seen[s->n_seen++] = (SeenSection) { .kind = kind, .node = node, .line = s->line };

        if (kind == SECTION_NODE) {
                ConfigNode *n;
                char *file;

                if (config_node_get(s->config, node, &s->node_index) < 0)
                        return state_oom(s);
                n = &s->config->nodes[s->node_index];
                file = strdup(s->name);
                if (!file)
                        return state_oom(s);
                free(n->file);
                n->file = file;
                n->line = s->line;
        }
        s->section = kind;
        snprintf(s->section_text, sizeof(s->section_text), "[%s]", inner);
        memset(s->key_line, 0, sizeof(s->key_line));
        return 1;
}

/* Check one line (already stripped of leading/trailing blanks and comments, non-empty)
 * and enter its section if it is a header. Returns 1 when libinih may have it. */
static int state_check_line(ParseState *s, char *p) {
        size_t len = strlen(p);

        if (p[0] == '[') {
                if (p[len - 1] != ']' || len < 3 || memchr(p + 1, ']', len - 2) ||
                    memchr(p + 1, '[', len - 2))
                        return state_fail(s, "\"%.*s\": broken section header (expected [Name])",
                                          CONFIG_SHOW_MAX, p);
                p[len - 1] = '\0';
                int r = state_enter_section(s, p + 1);
                p[len - 1] = ']';
                return r;
        }
        /* libinih splits at the first '=' or ':'; only '=' is paddd's syntax. */
        if (p[strcspn(p, "=:")] != '=')
                return state_fail(s, "\"%.*s\": expected Key=Value, [Broker] or [Node N]",
                                  CONFIG_SHOW_MAX, p);
        if (p[0] == '=')
                return state_fail(s, "\"%.*s\": missing key name before '='", CONFIG_SHOW_MAX, p);
        return 1;
}

/* libinih's line reader: hands out one normalised line per call (comments and leading
 * blanks removed, so libinih never sees a continuation line), and stops at the first
 * error. */
static char *config_reader(char *buf, int size, void *userdata) {
        ParseState *s = userdata;
        const char *start, *eol, *end;
        size_t len;

        if (s->error || !*s->pos)
                return NULL;

        start = s->pos;
        eol = strchrnul(start, '\n');
        s->pos = *eol ? eol + 1 : eol;
        s->line++;

        if (s->line == 1 && strncmp(start, "\xef\xbb\xbf", 3) == 0 && start + 3 <= eol)
                start += 3;
        while (start < eol && is_blank(*start))
                start++;
        end = eol;
        if (start < eol && (*start == '#' || *start == ';'))
                end = start;
        for (const char *q = start + 1; q < end; q++)
                if ((*q == '#' || *q == ';') && is_blank(q[-1])) {
                        end = q;
                        break;
                }
        while (end > start && is_blank(end[-1]))
                end--;
        len = (size_t) (end - start);

        if (size < 2)
                return NULL;
        if (len + 2 > (size_t) size) {
                state_fail(s, "line too long (more than %d characters)", size - 2);
                return NULL;
        }
        memcpy(buf, start, len);
        buf[len] = '\0';
        if (len > 0 && state_check_line(s, buf) == 0)
                return NULL;
        buf[len] = '\n';
        buf[len + 1] = '\0';
        return buf;
}

/* Integer in [min, max]. 0 or -EINVAL with the error recorded. */
static int parse_count(ParseState *s, const char *key, const char *v, unsigned min, unsigned max,
                       unsigned *ret) {
        uint64_t u;
        int r;

        if (!*v) {
                state_fail(s, "%s: empty value (expected an integer %u..%u)", key, min, max);
                return -EINVAL;
        }
        if (v[0] == '-') {
                state_fail(s, "%s: \"%.*s\" is negative (expected %u..%u)", key, CONFIG_SHOW_MAX,
                           v, min, max);
                return -EINVAL;
        }
        r = parse_unsigned(v, max, &u);
        if (r == -ERANGE || (r == 0 && u < min)) {
                state_fail(s, "%s: \"%.*s\" is out of range (%u..%u)", key, CONFIG_SHOW_MAX, v,
                           min, max);
                return -EINVAL;
        }
        if (r < 0) {
                state_fail(s, "%s: \"%.*s\" is not an integer", key, CONFIG_SHOW_MAX, v);
                return -EINVAL;
        }
        *ret = (unsigned) u;
        return 0;
}

/* Integer 0..BROKER_HELPERS_MAX or a percentage 0%..100%. */
static int parse_quantity(ParseState *s, const char *key, const char *v, ConfigQuantity *ret) {
        size_t len = strlen(v);
        uint64_t u;
        int r;

        if (len == 0) {
                state_fail(s, "%s: empty value (expected an integer 0..%u or a percentage)", key,
                           BROKER_HELPERS_MAX);
                return -EINVAL;
        }
        if (v[0] == '-') {
                state_fail(s, "%s: \"%.*s\" is negative", key, CONFIG_SHOW_MAX, v);
                return -EINVAL;
        }
        if (v[len - 1] == '%') {
                _cleanup_free_ char *digits = strndup(v, len - 1);

                if (!digits) {
                        state_oom(s);
                        return -ENOMEM;
                }
                r = parse_unsigned(digits, 100, &u);
                if (r == -ERANGE) {
                        state_fail(s, "%s: \"%.*s\" is more than 100%%", key, CONFIG_SHOW_MAX, v);
                        return -EINVAL;
                }
                if (r == 0) {
                        *ret = (ConfigQuantity) { .value = (unsigned) u, .percent = true };
                        return 0;
                }
        } else {
                r = parse_unsigned(v, BROKER_HELPERS_MAX, &u);
                if (r == -ERANGE) {
                        state_fail(s, "%s: \"%.*s\" is out of range (0..%u)", key, CONFIG_SHOW_MAX,
                                   v, BROKER_HELPERS_MAX);
                        return -EINVAL;
                }
                if (r == 0) {
                        *ret = (ConfigQuantity) { .value = (unsigned) u, .percent = false };
                        return 0;
                }
        }
        state_fail(s, "%s: \"%.*s\" is neither an integer nor a percentage", key, CONFIG_SHOW_MAX, v);
        return -EINVAL;
}

static bool group_name_is_valid(const char *g) {
        size_t len = strlen(g);

        if (len == 0 || len > CONFIG_GROUP_NAME_MAX)
                return false;
        if (!isalpha((unsigned char) g[0]) && g[0] != '_')
                return false;
        for (size_t i = 1; i < len; i++) {
                unsigned char ch = (unsigned char) g[i];

                if (ch == '$' && i == len - 1)
                        continue;
                if (!isascii(ch) || (!isalnum(ch) && ch != '_' && ch != '-' && ch != '.'))
                        return false;
        }
        return true;
}

static int set_broker_key(ParseState *s, ConfigKey k, const char *v) {
        Config *c = s->config;
        const char *key = key_names[k];
        int r;

        switch (k) {
        case KEY_MAX_HELPERS:
                return parse_quantity(s, key, v, &c->max_helpers) == 0;
        case KEY_MAX_HELPERS_PER_NODE:
                return parse_quantity(s, key, v, &c->max_helpers_per_node) == 0;
        case KEY_MAX_HELPERS_PER_USER:
                if (!*v) {
                        c->max_helpers_per_user = 0;
                        return 1;
                }
                return parse_count(s, key, v, 0, BROKER_HELPERS_MAX, &c->max_helpers_per_user) == 0;
        case KEY_MAX_LEASES_PER_CLIENT:
                return parse_count(s, key, v, 1, 65536, &c->max_leases_per_client) == 0;
        case KEY_MAX_LEASES_PER_USER:
                return parse_count(s, key, v, 0, 1048576, &c->max_leases_per_user) == 0;
        case KEY_MAX_WAITING:
                return parse_count(s, key, v, 0, 65536, &c->max_waiting) == 0;
        case KEY_MAX_WAITING_PER_USER:
                return parse_count(s, key, v, 0, 65536, &c->max_waiting_per_user) == 0;
        case KEY_MAX_WAIT_USEC:
                return parse_count(s, key, v, 1, CONFIG_MAX_WAIT_USEC_MAX, &c->max_wait_usec) == 0;
        case KEY_HELPER_POLICY:
                r = helper_policy_from_string(v);
                if (r < 0)
                        return state_fail(s, "%s: \"%.*s\" is not one of idle, batch, nice, none",
                                          key, CONFIG_SHOW_MAX, v);
                c->helper_policy = (HelperPolicy) r;
                return 1;
        case KEY_ADMIN_GROUP: {
                char *g = NULL;

                if (*v) {
                        if (!group_name_is_valid(v))
                                return state_fail(s, "%s: \"%.*s\" is not a valid group name", key,
                                                  CONFIG_SHOW_MAX, v);
                        g = strdup(v);
                        if (!g)
                                return state_oom(s);
                }
                free(c->admin_group);
                c->admin_group = g;
                return 1;
        }
        default:
                return state_fail(s, "%s: internal error", key);
        }
}

/* A key seen twice in one section of one text is an error. */
static int state_mark_key(ParseState *s, ConfigKey k) {
        if (s->key_line[k])
                return state_fail(s, "%s: duplicate key in %s (already set on line %u)",
                                  key_names[k], s->section_text, s->key_line[k]);
        s->key_line[k] = s->line;
        return 1;
}

static int config_handler(void *userdata, const char *section, const char *name, const char *value) {
        ParseState *s = userdata;
        int k;

        if (s->error)
                return 0;
        if (!name || !value)
                return state_fail(s, "malformed line");

        for (k = 0; k < _KEY_MAX; k++)
                if (streq(name, key_names[k]))
                        break;

        switch (s->section) {
        case SECTION_NONE:
                return state_fail(s, "%.*s: key outside of any section (put it under [Broker])",
                                  CONFIG_SHOW_MAX, name);
        case SECTION_BROKER:
                if (k == _KEY_MAX)
                        return state_fail(s, "%.*s: unknown key in [Broker]", CONFIG_SHOW_MAX, name);
                if (!state_mark_key(s, k))
                        return 0;
                return set_broker_key(s, k, value);
        case SECTION_NODE: {
                ConfigQuantity q;

                if (k != KEY_MAX_HELPERS)
                        return state_fail(s, "%.*s: unknown key in %s (only MaxHelpers)",
                                          CONFIG_SHOW_MAX, name, s->section_text);
                if (!state_mark_key(s, k))
                        return 0;
                if (parse_quantity(s, key_names[k], value, &q) < 0)
                        return 0;
                s->config->nodes[s->node_index].max_helpers = q;
                s->config->nodes[s->node_index].max_helpers_set = true;
                return 1;
        }
        }
        return state_fail(s, "internal error");
}

int config_parse_string(Config *c, const char *text, const char *name, char **ret_error) {
        ParseState s = {
                .config = c,
                .name = name ?: "<string>",
                .pos = text,
        };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!c || !text)
                return -EINVAL;

        r = ini_parse_stream(config_reader, &s, config_handler, &s);
        if (!s.error && r != 0) {
                /* libinih found something the reader let through. */
                s.error = r == -2 ? -ENOMEM : -EINVAL;
                s.error_line = r > 0 ? (unsigned) r : s.line;
                s.error_text = r == -2 ? NULL : strdup("syntax error");
        }
        free(s.seen);
        if (!s.error)
                return 0;

        if (ret_error && s.error_text &&
            asprintf(ret_error, "%s:%u: %s", s.name, s.error_line, s.error_text) < 0)
                *ret_error = NULL;
        free(s.error_text);
        return s.error;
}

/* Read a whole config file. -ENOENT passes through for the caller to judge. */
static int read_config_file(const char *path, char **ret, char **ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        struct stat st;

        /* O_NONBLOCK: a FIFO put there must not hang paddd in open(); it is refused below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode)) {
                if (asprintf(ret_error, "%s: not a regular file", path) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        buf = malloc(CONFIG_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, CONFIG_FILE_MAX + 1 - n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CONFIG_FILE_MAX) {
                        if (asprintf(ret_error, "%s: larger than %d bytes", path, CONFIG_FILE_MAX) < 0)
                                *ret_error = NULL;
                        return -EFBIG;
                }
        }
        if (memchr(buf, '\0', n)) {
                if (asprintf(ret_error, "%s: contains a NUL byte", path) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Parse the file at path into c. missing_ok: a missing file is not an error. */
static int config_parse_file(Config *c, const char *path, bool missing_ok, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_config_file(path, &text, ret_error);
        if (r == -ENOENT && missing_ok)
                return 0;
        if (r < 0) {
                if (!*ret_error && asprintf(ret_error, "%s: cannot read: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        return config_parse_string(c, text, path, ret_error);
}

static bool dropin_filter(const struct dirent *de) {
        size_t len = strlen(de->d_name);

        return de->d_name[0] != '.' && len > 5 && streq(de->d_name + len - 5, ".conf");
}

static int dropin_filter_cb(const struct dirent *de) {
        return dropin_filter(de);
}

static int dropin_compare(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int config_parse_dropins(Config *c, const char *dir, char **ret_error) {
        struct dirent **list = NULL;
        int n, r = 0;

        n = scandir(dir, &list, dropin_filter_cb, dropin_compare);
        if (n < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return 0;
                if (asprintf(ret_error, "%s: cannot read directory: %s", dir, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;

                if (r >= 0) {
                        if (asprintf(&path, "%s/%s", dir, list[i]->d_name) < 0) {
                                path = NULL;
                                r = -ENOMEM;
                        } else
                                r = config_parse_file(c, path, false, ret_error);
                }
                free(list[i]);
        }
        free(list);
        return r;
}

int config_load(const char *path, const char *dropin_dir, bool use_files, Config **ret, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;

        r = config_new(&c);
        if (r < 0)
                return r;
        r = config_parse_string(c, config_default_text, BUILTIN_NAME, &error);
        if (r >= 0 && use_files) {
                r = config_parse_file(c, path ?: CONFIG_PATH_DEFAULT, !path, &error);
                if (r >= 0)
                        r = config_parse_dropins(c, dropin_dir ?: CONFIG_DROPIN_DIR_DEFAULT, &error);
        }
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* floor(cpus * q / 100) for a percentage, else the number; capped at BROKER_HELPERS_MAX. */
static unsigned quantity_resolve(ConfigQuantity q, unsigned cpus) {
        uint64_t v = q.percent ? (uint64_t) cpus * q.value / 100 : q.value;

        return (unsigned) MIN(v, (uint64_t) BROKER_HELPERS_MAX);
}

int config_to_limits(const Config *c, const Topology *t, BudgetLimits *ret_limits, char **ret_error) {
        _cleanup_free_ unsigned *node_max = NULL;

        if (ret_error)
                *ret_error = NULL;
        if (!c || !t || !ret_limits)
                return -EINVAL;

        node_max = calloc(MAX(t->n_nodes, 1u), sizeof(unsigned));
        if (!node_max)
                return -ENOMEM;
        for (unsigned i = 0; i < t->n_nodes; i++)
                node_max[i] = quantity_resolve(c->max_helpers_per_node, t->nodes[i].n_cpus);

        for (unsigned k = 0; k < c->n_nodes; k++) {
                const ConfigNode *n = &c->nodes[k];
                unsigned i;

                for (i = 0; i < t->n_nodes; i++)
                        if (t->nodes[i].id == n->node)
                                break;
                if (i == t->n_nodes) {
                        if (ret_error && asprintf(ret_error, "%s:%u: [Node %d]: no such NUMA node",
                                                  n->file ?: "<string>", n->line, n->node) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                if (n->max_helpers_set)
                        node_max[i] = quantity_resolve(n->max_helpers, t->nodes[i].n_cpus);
        }

        *ret_limits = (BudgetLimits) {
                .max_helpers = quantity_resolve(c->max_helpers, t->n_cpus),
                .node_max = TAKE_PTR(node_max),
                .max_per_user = c->max_helpers_per_user,
                .max_leases_per_client = c->max_leases_per_client,
                .max_waiting = c->max_waiting,
                .max_waiting_per_user = c->max_waiting_per_user,
                .max_leases_per_user = c->max_leases_per_user,
        };
        return 0;
}
