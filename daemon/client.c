/* client.c: the clients of paddd (client.h): the table by unique bus name, credentials kept
 * from the first call, the admin check, and the end of everything a client held when its
 * connection goes away. */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "lease.h"
#include "log.h"

static int client_compare(const void *a, const void *b) {
        return strcmp(((const Client *) a)->name, ((const Client *) b)->name);
}

Client *client_find(Manager *m, const char *name) {
        Client key = { .name = (char *) name };
        void *node = tfind(&key, &m->clients, client_compare);

        return node ? *(Client **) node : NULL;
}

Client *client_free(Client *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;
        while (c->waiters)
                waiter_free(c->waiters);
        while (c->leases)
                lease_free(c->leases);
        budget_client_free(c->budget_client);
        if (c->name && client_find(m, c->name) == c) {
                tdelete(c, &m->clients, client_compare);
                LIST_REMOVE(clients, m->client_list, c);
                m->n_clients--;
        }
        free(c->name);
        free(c);
        return NULL;
}
DEFINE_POINTER_CLEANUP(Client, client_free);

int client_new(Manager *m, const char *name, uid_t uid, pid_t pid, uint64_t start_time, Client **ret) {
        _cleanup_(client_freep) Client *c = NULL;
        int r;

        assert(!client_find(m, name));
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->uid = uid;
        c->pid = pid;
        c->start_time = start_time;
        c->list_tokens = BROKER_LIST_BURST;
        c->name = strdup(name);
        if (!c->name)
                return -ENOMEM;
        r = budget_client_new(m->budget, uid, c, &c->budget_client);
        if (r < 0)
                return r;
        if (!tsearch(c, &m->clients, client_compare))
                return -ENOMEM;
        LIST_PREPEND(clients, m->client_list, c);
        m->n_clients++;
        *ret = TAKE_PTR(c);
        return 0;
}

bool client_vanished(Manager *m, const char *name) {
        Client *c = client_find(m, name);

        if (!c)
                return false;
        if (c->leases || c->waiters)
                log_info("Client %s (pid " PID_FMT ") went away, reclaiming its leases.", c->name, c->pid);
        LIST_FOREACH(leases, l, c->leases)
                manager_count(m, STATS_RECLAIMED);
        client_free(c);
        manager_slots_returned(m);
        return true;
}

/* getgrnam_r/getpwuid_r with a growing buffer. */
static bool user_in_group(uid_t uid, const char *group) {
        _cleanup_free_ char *gbuf = NULL, *pbuf = NULL;
        struct group grp, *g = NULL;
        struct passwd pw, *p = NULL;
        size_t len;
        int r;

        for (len = 1024;; len *= 2) {
                free(gbuf);
                gbuf = malloc(len);
                if (!gbuf)
                        return false;
                r = getgrnam_r(group, &grp, gbuf, len, &g);
                if (r != ERANGE || len >= (1u << 24))
                        break;
        }
        if (r != 0 || !g)
                return false;

        for (len = 1024;; len *= 2) {
                free(pbuf);
                pbuf = malloc(len);
                if (!pbuf)
                        return false;
                r = getpwuid_r(uid, &pw, pbuf, len, &p);
                if (r != ERANGE || len >= (1u << 24))
                        break;
        }
        if (r != 0 || !p)
                return false;

        if (p->pw_gid == g->gr_gid)
                return true;
        for (char **mem = g->gr_mem; mem && *mem; mem++)
                if (streq(*mem, p->pw_name))
                        return true;
        return false;
}

bool client_take_list_token(Client *c, uint64_t now_usec) {
        uint64_t period = 1000000u / BROKER_LIST_PER_SEC;

        if (now_usec > c->list_refilled) {
                uint64_t n = (now_usec - c->list_refilled) / period;

                if (n > 0 || c->list_refilled == 0) {
                        c->list_tokens = (unsigned) MIN((uint64_t) BROKER_LIST_BURST, c->list_tokens + n);
                        c->list_refilled = c->list_refilled == 0 ? now_usec : c->list_refilled + n * period;
                }
        }
        if (c->list_tokens == 0)
                return false;
        c->list_tokens--;
        return true;
}

bool client_is_admin_cached(Client *c) {
        if (c->list_admin_generation != c->manager->config_generation) {
                c->list_admin = client_is_admin(c);
                c->list_admin_generation = c->manager->config_generation;
        }
        return c->list_admin;
}

bool client_is_admin(const Client *c) {
        const Config *config = c->manager->config;

        if (c->uid == 0)
                return true;
        if (!config->admin_group || !config->admin_group[0])
                return false;
        return user_in_group(c->uid, config->admin_group);
}
