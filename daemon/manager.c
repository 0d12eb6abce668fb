/* manager.c: paddd's state and its lifecycle. Owns the config, topology and budget, the
 * bus connection, the clients (one per unique bus name, credentials from the bus queried
 * once and cached, an sd_bus_track that frees everything the client held the moment its
 * connection goes away), the lease objects with their TTL timers, the Acquire calls kept
 * for a later answer with their deadline timers, the reload, the coalesced
 * PropertiesChanged signals and the notifications to systemd (sent through notify.c). The
 * budget decides; this file does the I/O around it and logs once per event. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-error.h"
#include "bus.h"
#include "log.h"
#include "manager.h"

/* ---- lookup trees --------------------------------------------------------------------- */

static int client_compare(const void *a, const void *b) {
        return strcmp(((const Client *) a)->name, ((const Client *) b)->name);
}

static int lease_compare(const void *a, const void *b) {
        uint64_t x = ((const Lease *) a)->id, y = ((const Lease *) b)->id;

        return x < y ? -1 : x > y;
}

Lease *manager_find_lease(Manager *m, uint64_t id) {
        Lease key = { .id = id };
        void *node = tfind(&key, &m->leases, lease_compare);

        return node ? *(Lease **) node : NULL;
}

static Client *manager_find_client(Manager *m, const char *name) {
        Client key = { .name = (char *) name };
        void *node = tfind(&key, &m->clients, client_compare);

        return node ? *(Client **) node : NULL;
}

/* ---- leases --------------------------------------------------------------------------- */

static Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        if (l->client)
                LIST_REMOVE(leases, l->client->leases, l);
        tdelete(l, &l->manager->leases, lease_compare);
        sd_event_source_disable_unref(l->ttl_source);
        budget_lease_free(l->budget_lease);
        free(l);
        return NULL;
}

static void manager_dispatch(Manager *m);

static int lease_on_ttl(sd_event_source *s, uint64_t usec, void *userdata) {
        Lease *l = userdata;
        Manager *m = l->manager;

        log_debug("Lease %" PRIu64 " of %s reached its ttl, reclaiming %u helpers.",
                  l->id, l->client->name, budget_lease_get_granted(l->budget_lease));
        lease_free(l);
        manager_dispatch(m);
        manager_state_changed(m);
        return 0;
}

/* Arm a timer usec from now; a deadline past the clock's range means "never". */
static int manager_add_timer(Manager *m, sd_event_source **ret, uint64_t usec,
                             sd_event_time_handler_t handler, void *userdata) {
        int r;

        r = sd_event_add_time_relative(m->event, ret, CLOCK_MONOTONIC, usec, 1, handler, userdata);
        if (r == -EOVERFLOW) {
                *ret = NULL;
                return 0;
        }
        return r;
}

/* Wrap a budget lease in a bus object. Takes bl even on failure. */
static int lease_new(Manager *m, Client *c, BudgetLease *bl, const char *tag,
                     const SchedParams *sched, uint64_t ttl_usec, Lease **ret) {
        Lease *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l) {
                budget_lease_free(bl);
                return -ENOMEM;
        }
        l->manager = m;
        l->budget_lease = bl;
        l->id = budget_lease_get_id(bl);
        snprintf(l->path, sizeof l->path, LEASE_PATH_PREFIX "/%" PRIu64, l->id);
        snprintf(l->tag, sizeof l->tag, "%s", tag);
        l->sched = *sched;
        if (!tsearch(l, &m->leases, lease_compare)) {
                lease_free(l);
                return -ENOMEM;
        }
        l->client = c;
        LIST_PREPEND(leases, c->leases, l);
        budget_lease_set_userdata(bl, l);

        if (ttl_usec > 0) {
                r = manager_add_timer(m, &l->ttl_source, ttl_usec, lease_on_ttl, l);
                if (r < 0) {
                        lease_free(l);
                        return r;
                }
        }

        log_debug("Lease %" PRIu64 " granted %u helpers to %s (uid " UID_FMT ", pid " PID_FMT
                  ", tag '%s').", l->id, budget_lease_get_granted(bl), c->name, c->uid, c->pid, l->tag);
        *ret = l;
        return 0;
}

bool lease_is_owner(const Lease *l, sd_bus_message *message) {
        const char *sender = sd_bus_message_get_sender(message);

        return l->client && sender && streq(sender, l->client->name);
}

void lease_release(Lease *l) {
        Manager *m = l->manager;

        log_debug("Lease %" PRIu64 " of %s released (%u helpers).",
                  l->id, l->client->name, budget_lease_get_granted(l->budget_lease));
        lease_free(l);
        manager_dispatch(m);
        manager_state_changed(m);
}

int lease_shrink(Lease *l, unsigned count, unsigned *ret_granted) {
        Manager *m = l->manager;
        int r;

        r = budget_lease_shrink(l->budget_lease, count, ret_granted);
        if (r != 0)
                return r;
        if (count > 0) {
                log_debug("Lease %" PRIu64 " of %s shrunk by %u to %u helpers.",
                          l->id, l->client->name, count, *ret_granted);
                if (m->bus)
                        (void) sd_bus_emit_properties_changed(m->bus, l->path, LEASE_INTERFACE,
                                                              "Granted", "Placement", NULL);
                manager_dispatch(m);
                manager_state_changed(m);
        }
        return 0;
}

int lease_raise_priority(Lease *l, pid_t tid) {
        int r;

        r = priority_raise(l->client->pid, l->client->uid, tid, &l->sched);
        if (r < 0)
                log_warning_errno(r, "Raising thread " PID_FMT " of %s (lease %" PRIu64 ") failed: %m",
                                  tid, l->client->name, l->id);
        else if (r == 0)
                log_debug("Raised thread " PID_FMT " of %s (lease %" PRIu64 ").",
                          tid, l->client->name, l->id);
        return r;
}

/* ---- waiters -------------------------------------------------------------------------- */

static Waiter *waiter_free(Waiter *w) {
        if (!w)
                return NULL;
        LIST_REMOVE(waiters, w->client->waiters, w);
        budget_waiter_free(w->budget_waiter);
        sd_event_source_disable_unref(w->deadline_source);
        sd_bus_message_unref(w->message);
        free(w);
        return NULL;
}

static int waiter_on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Waiter *w = userdata;
        Manager *m = w->manager;
        int r;

        log_debug("Acquire call of %s timed out waiting for helpers.", w->client->name);
        bus_error_set(&error, PAD_ERROR_TIMEOUT, NULL);
        r = sd_bus_reply_method_error(w->message, &error);
        if (r < 0)
                log_debug("Failed to answer %s: %s", w->client->name, strerror(-r));
        waiter_free(w);
        manager_dispatch(m);    /* the head may have been what held the others back */
        manager_state_changed(m);
        return 0;
}

static int waiter_new(Manager *m, Client *c, sd_bus_message *message, const AcquireRequest *req,
                      const BudgetRequest *breq, const SchedParams *sched) {
        Waiter *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->client = c;
        w->sched = *sched;
        w->ttl_usec = req->ttl_usec;
        snprintf(w->tag, sizeof w->tag, "%s", req->tag);
        LIST_PREPEND(waiters, c->waiters, w);

        r = budget_enqueue(c->budget_client, breq, w, &w->budget_waiter);
        if (r == 0)
                r = manager_add_timer(m, &w->deadline_source, req->wait_usec, waiter_on_deadline, w);
        if (r != 0) {
                waiter_free(w);
                return r;
        }
        w->message = sd_bus_message_ref(message);
        log_debug("Acquire call of %s waits for %u of %u helpers (%" PRIu64 " us).",
                  c->name, req->min, req->helpers, req->wait_usec);
        return 0;
}

/* Serve waiters while the head of the queue fits. */
static void manager_dispatch(Manager *m) {
        for (;;) {
                BudgetLease *bl;
                Waiter *w;
                Lease *l;
                void *userdata;
                int r;

                r = budget_dispatch(m->budget, &userdata, &bl);
                if (r < 0)
                        log_warning_errno(r, "Failed to serve a waiting Acquire call: %m");
                if (r <= 0)
                        return;

                w = userdata;
                w->budget_waiter = NULL;        /* freed by budget_dispatch */
                r = lease_new(m, w->client, bl, w->tag, &w->sched, w->ttl_usec, &l);
                if (r < 0) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                        bus_error_set(&error, r, NULL);
                        (void) sd_bus_reply_method_error(w->message, &error);
                } else {
                        r = bus_reply_acquire(w->message, l);
                        if (r < 0) {
                                log_debug("Failed to answer %s, dropping its lease: %s",
                                          w->client->name, strerror(-r));
                                lease_free(l);
                        }
                }
                waiter_free(w);
                manager_state_changed(m);
        }
}

/* ---- clients -------------------------------------------------------------------------- */

static Client *client_free(Client *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;
        while (c->waiters)
                waiter_free(c->waiters);
        while (c->leases)
                lease_free(c->leases);
        budget_client_free(c->budget_client);
        if (c->name) {
                tdelete(c, &m->clients, client_compare);
                LIST_REMOVE(clients, m->client_list, c);
                m->n_clients--;
        }
        sd_bus_track_unref(c->track);
        free(c->name);
        free(c);
        return NULL;
}

static int client_on_vanished(sd_bus_track *track, void *userdata) {
        Client *c = userdata;
        Manager *m = c->manager;

        if (c->leases || c->waiters)
                log_debug("Client %s (pid " PID_FMT ") went away, reclaiming its leases.", c->name, c->pid);
        client_free(c);
        manager_dispatch(m);
        manager_state_changed(m);
        return 0;
}

static int client_new(Manager *m, const char *name, uid_t uid, pid_t pid, Client **ret) {
        Client *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->uid = uid;
        c->pid = pid;
        c->name = strdup(name);
        if (!c->name) {
                free(c);
                return -ENOMEM;
        }
        if (!tsearch(c, &m->clients, client_compare)) {
                free(c->name);
                free(c);
                return -ENOMEM;
        }
        LIST_PREPEND(clients, m->client_list, c);
        m->n_clients++;

        r = budget_client_new(m->budget, uid, c, &c->budget_client);
        if (r < 0)
                goto fail;
        r = sd_bus_track_new(m->bus, &c->track, client_on_vanished, c);
        if (r < 0)
                goto fail;
        r = sd_bus_track_add_name(c->track, name);
        if (r < 0)
                goto fail;

        *ret = c;
        return 0;
fail:
        client_free(c);
        return r;
}

int manager_get_client(Manager *m, sd_bus_message *message, Client **ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(message);
        Client *c;
        uid_t uid;
        pid_t pid;
        int r;

        if (!sender)
                return PAD_ERROR_ACCESS_DENIED;
        c = manager_find_client(m, sender);
        if (c) {
                *ret = c;
                return 0;
        }

        /* The bus's own record of the peer (dbus-daemon: SO_PEERCRED at connect time),
         * never what /proc says now: augmented fields are refused. */
        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_augmented_mask(creds) & (SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID))
                return PAD_ERROR_ACCESS_DENIED;
        if (sd_bus_creds_get_euid(creds, &uid) < 0 || sd_bus_creds_get_pid(creds, &pid) < 0 || pid <= 0)
                return PAD_ERROR_ACCESS_DENIED;

        r = client_new(m, sender, uid, pid, &c);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
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

bool manager_client_is_admin(Manager *m, const Client *c) {
        if (c->uid == 0)
                return true;
        if (!m->config->admin_group || !m->config->admin_group[0])
                return false;
        return user_in_group(c->uid, m->config->admin_group);
}

/* ---- acquire -------------------------------------------------------------------------- */

/* The nodes the thread may run on, from its CPU affinity. */
static int thread_allowed_nodes(const Topology *t, pid_t tid, bool **ret) {
        _cleanup_free_ bool *allowed = NULL;
        cpu_set_t *set = NULL;
        size_t n_cpus = 1024, size;

        for (;;) {
                set = CPU_ALLOC(n_cpus);
                if (!set)
                        return -ENOMEM;
                size = CPU_ALLOC_SIZE(n_cpus);
                if (sched_getaffinity(tid, size, set) == 0)
                        break;
                CPU_FREE(set);
                if (errno != EINVAL || n_cpus >= (1u << 20))
                        return -errno;
                n_cpus *= 2;
        }

        allowed = calloc(MAX(t->n_nodes, 1u), sizeof(bool));
        if (!allowed) {
                CPU_FREE(set);
                return -ENOMEM;
        }
        for (size_t cpu = 0; cpu < size * 8; cpu++)
                if (CPU_ISSET_S(cpu, size, set)) {
                        int i = topology_cpu_node_index(t, cpu);

                        if (i >= 0)
                                allowed[i] = true;
                }
        CPU_FREE(set);
        *ret = TAKE_PTR(allowed);
        return 0;
}

int manager_acquire(Manager *m, Client *c, sd_bus_message *message, const AcquireRequest *req,
                    Lease **ret_lease) {
        _cleanup_free_ bool *allowed = NULL;
        SchedParams sched = {};
        BudgetLease *bl;
        pid_t tid;
        int r;

        if (req->node != -1 && topology_node_index(m->topology, req->node) < 0)
                return PAD_ERROR_NO_SUCH_NODE;

        tid = req->caller_tid > 0 ? req->caller_tid : c->pid;
        r = priority_read(c->pid, c->uid, tid, &sched);
        if (r != 0)
                return r;
        r = thread_allowed_nodes(m->topology, tid, &allowed);
        if (r == -ESRCH)
                return PAD_ERROR_INVALID_ARGS;
        if (r < 0)
                return r;

        BudgetRequest breq = {
                .helpers = req->helpers,
                .min = req->min,
                .node = req->node,
                .strict_node = req->strict_node,
                .allowed = allowed,
        };
        r = budget_acquire(c->budget_client, &breq, &bl);
        if (r == 0) {
                r = lease_new(m, c, bl, req->tag, &sched, req->ttl_usec, ret_lease);
                if (r < 0)
                        return r;
                manager_state_changed(m);
                return 0;
        }
        if (r != PAD_ERROR_BUSY || req->wait_usec == 0)
                return r;

        r = waiter_new(m, c, message, req, &breq, &sched);
        if (r != 0)
                return r;
        manager_state_changed(m);
        *ret_lease = NULL;
        return 0;
}

int manager_set_quota(Manager *m, int node, unsigned max_helpers) {
        int r;

        r = budget_set_quota(m->budget, node, max_helpers);
        if (r != 0)
                return r;
        if (node < 0)
                log_info("Machine-wide quota set to %u helpers.", max_helpers);
        else
                log_info("Quota of node %d set to %u helpers.", node, max_helpers);
        manager_dispatch(m);
        manager_state_changed(m);
        return 0;
}

/* ---- config --------------------------------------------------------------------------- */

static int manager_load_config(Manager *m, Config **ret_config, BudgetLimits *ret_limits,
                               char **ret_error) {
        Config *config = NULL;
        int r;

        r = config_load(m->config_path, m->dropin_dir, m->use_files, &config, ret_error);
        if (r < 0)
                return r;
        r = config_to_limits(config, m->topology, ret_limits, ret_error);
        if (r < 0) {
                config_free(config);
                return r;
        }
        *ret_config = config;
        return 0;
}

int manager_reload(Manager *m, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        BudgetLimits limits = {};
        Config *config = NULL;
        struct timespec ts;
        char text[64];
        int r;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(text, sizeof text, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
                 (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u);
        (void) notifier_send(m->notifier, text);

        r = manager_load_config(m, &config, &limits, &error);
        if (r >= 0) {
                r = budget_set_limits(m->budget, &limits);
                free(limits.node_max);
                if (r < 0)
                        config_free(config);
        }
        if (r < 0) {
                if (!error && asprintf(&error, "%s", strerror(-r)) < 0)
                        error = NULL;
                log_warning("Reload failed, keeping the old configuration: %s",
                            error ? error : "out of memory");
                (void) notifier_send(m->notifier, "READY=1");
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }

        config_free(m->config);
        m->config = config;
        log_info("Configuration reloaded: %u helpers machine-wide, helper policy %s.",
                 budget_get_max_helpers(m->budget), helper_policy_to_string(m->config->helper_policy));
        manager_dispatch(m);
        m->changes_all = true;
        manager_state_changed(m);
        (void) notifier_send(m->notifier, "READY=1");
        return 0;
}

/* ---- properties and status ------------------------------------------------------------ */

static int manager_on_changes(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        Budget *b = m->budget;
        const char *names[8];
        unsigned n = 0, v;
        bool nodes_changed = false;
        char *status = NULL;

#define CHECK(field, value, name)                                               \
        do {                                                                    \
                v = (value);                                                    \
                if (m->changes_all || m->emitted.field != v)                    \
                        names[n++] = name;                                      \
                m->emitted.field = v;                                           \
        } while (0)
        CHECK(max_helpers, budget_get_max_helpers(b), "MaxHelpers");
        CHECK(in_use, budget_get_in_use(b), "InUse");
        CHECK(waiting, budget_get_n_waiting(b), "Waiting");
        CHECK(leases, budget_get_n_leases(b), "Leases");
#undef CHECK
        for (unsigned i = 0; i < budget_get_n_nodes(b); i++) {
                unsigned max, in_use;

                budget_get_node(b, i, NULL, NULL, &max, &in_use);
                if (m->emitted.node_max[i] != max || m->emitted.node_in_use[i] != in_use)
                        nodes_changed = true;
                m->emitted.node_max[i] = max;
                m->emitted.node_in_use[i] = in_use;
        }
        if (m->changes_all || nodes_changed)
                names[n++] = "Nodes";
        if (m->changes_all || m->emitted.policy != m->config->helper_policy)
                names[n++] = "HelperPolicy";
        m->emitted.policy = m->config->helper_policy;
        names[n] = NULL;
        m->changes_all = false;
        m->changes_pending = false;
        m->changes_last = usec;

        if (n > 0 && m->bus)
                (void) sd_bus_emit_properties_changed_strv(m->bus, BROKER_PATH, BROKER_INTERFACE,
                                                           (char **) names);

        if (asprintf(&status, "%u/%u helpers lent, %u leases, %u waiting",
                     m->emitted.in_use, m->emitted.max_helpers, m->emitted.leases, m->emitted.waiting) < 0)
                return 0;
        if ((m->status && streq(status, m->status)) || notifier_send_status(m->notifier, status) < 0) {
                free(status);
                return 0;
        }
        free(m->status);
        m->status = status;
        return 0;
}

void manager_state_changed(Manager *m) {
        uint64_t now;

        if (m->changes_pending || !m->changes_source)
                return;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                now = 0;
        if (sd_event_source_set_time(m->changes_source,
                                     MAX(now, m->changes_last + MANAGER_CHANGES_INTERVAL_USEC)) < 0 ||
            sd_event_source_set_enabled(m->changes_source, SD_EVENT_ONESHOT) < 0)
                return;
        m->changes_pending = true;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int manager_new(sd_event *event, const ManagerOptions *options, Manager **ret, char **ret_error) {
        _cleanup_(manager_freep) Manager *m = NULL;
        BudgetLimits limits = {};
        unsigned n_nodes;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(event);
        m->use_files = options->use_files;
        if ((options->config_path && !(m->config_path = strdup(options->config_path))) ||
            (options->dropin_dir && !(m->dropin_dir = strdup(options->dropin_dir))))
                return -ENOMEM;

        r = topology_load(&m->topology);
        if (r < 0)
                return r;
        r = manager_load_config(m, &m->config, &limits, ret_error);
        if (r < 0)
                return r;
        r = budget_new(m->topology, &limits, &m->budget);
        free(limits.node_max);
        if (r < 0)
                return r;

        n_nodes = MAX(budget_get_n_nodes(m->budget), 1u);
        m->emitted.node_max = calloc(n_nodes, sizeof(unsigned));
        m->emitted.node_in_use = calloc(n_nodes, sizeof(unsigned));
        if (!m->emitted.node_max || !m->emitted.node_in_use)
                return -ENOMEM;

        r = notifier_new(event, &m->notifier);
        if (r < 0)
                return r;
        r = sd_event_add_time(event, &m->changes_source, CLOCK_MONOTONIC, 0, 1, manager_on_changes, m);
        if (r < 0)
                return r;
        m->changes_all = true;  /* first STATUS right after start */
        m->changes_pending = true;

        *ret = TAKE_PTR(m);
        return 0;
}

int manager_connect_bus(Manager *m, sd_bus *bus) {
        int r;

        m->bus = sd_bus_ref(bus);
        r = bus_add_objects(m, bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_request_name(bus, BROKER_BUS_NAME, 0);
        if (r < 0)
                return r;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->client_list)
                client_free(m->client_list);
        sd_event_source_disable_unref(m->changes_source);
        notifier_free(m->notifier);
        budget_free(m->budget);
        config_free(m->config);
        topology_free(m->topology);
        free(m->emitted.node_max);
        free(m->emitted.node_in_use);
        free(m->status);
        free(m->config_path);
        free(m->dropin_dir);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
