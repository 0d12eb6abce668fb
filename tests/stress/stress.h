/* stress.h: what every program of the stress suite shares: the main() that checks it can
 * run (root, paddd, dbus-daemon, enough file descriptors) and runs one Check suite; a
 * fixture with dbus-daemon's default limits; the uids clients run as; small sd-bus calls
 * to the broker that return an error name instead of asserting (children use them too);
 * a snapshot of the broker's books with the invariants every test checks; agents (forked
 * client processes, each with its own uid and any number of bus connections, driven over
 * a socket); and the figures the tests print (percentiles, paddd's peak RSS). */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "broker-contract.h"
#include "fixture.h"

#define STRESS_CALL_USEC (10 * 1000000ULL)     /* bound of every bus call */
#define STRESS_SETTLE_MS 10000                  /* bound for state that must settle */
#define STRESS_PATH_MAX 96
#define STRESS_NAME_MAX 48
#define STRESS_ERROR_MAX 96

extern Fixture stress_fx;

/* ---- running -------------------------------------------------------------------------- */

/* Runs the tests, each as its own Check case named after it without "test_"
 * (CK_RUN_CASE=<name> selects one; a teardown stops the fixture after each). Skips (77)
 * without root, paddd, dbus-daemon or n_uids client uids (stress_pick_uids); raises
 * RLIMIT_NOFILE to its hard limit so dbus-daemon (forked by the fixture) and the agents can
 * hold thousands of sockets. */
int stress_main_tests(const char *name, size_t n_uids, const TTest *const *tests, size_t n_tests, int timeout_s);
#define STRESS_MAIN(name, n_uids, t, timeout) \
        stress_main_tests((name), (n_uids), (const TTest *const[]) { test_##t }, 1, (timeout))
/* dbus-daemon with its default limits and paddd with config; asserts. */
void stress_start(const char *config);
/* A seed from $PADDD_STRESS_SEED, else the clock; printed, so a failure can be replayed. */
unsigned stress_seed(const char *what);
long long stress_now_us(void);

/* ---- uids ------------------------------------------------------------------------------- */

/* n distinct non-root uids to run clients as. dbus-daemon refuses a connection whose uid
 * it cannot look up (it needs the uid's groups for the policy), so these are uids with a
 * passwd entry, taken from the user database in uid order. Returns how many were found. */
size_t stress_pick_uids(uid_t *ret, size_t n);
/* In a child: drop every group and become uid (with its passwd gid). 0 or -errno. */
int stress_become(uid_t uid);

/* How many match rules the bus lets one connection add (AddMatch until refused, at most
 * limit + 1): 512 proves dbus-daemon runs with its default limits. -errno on trouble. */
int stress_match_rules_allowed(const char *address, unsigned limit);

/* ---- bus calls (never assert; error names land in err[STRESS_ERROR_MAX]) ----------------- */

int sbus_open(const char *address, sd_bus **ret);
/* Acquire on any node; tag may be NULL. path gets STRESS_PATH_MAX bytes. */
int sbus_acquire(sd_bus *b, uint32_t helpers, uint32_t min, uint64_t wait_usec, const char *tag,
                 char *path, uint32_t *granted, char *err);
/* Every argument of an Acquire; ttl_usec 0 and tag NULL leave those options out. */
typedef struct SAcquire {
        uint32_t helpers, min;
        int32_t node;
        bool strict_node;
        uint64_t wait_usec, ttl_usec;
        const char *tag;
} SAcquire;
int sbus_acquire_message(sd_bus *b, const SAcquire *a, sd_bus_message **ret);
/* Acquire with every option; a wait_usec past 30 s is taken as 30 s for the call's own bound. */
int sbus_acquire_with(sd_bus *b, const SAcquire *a, char *path, uint32_t *granted, char *err);
/* Send the same Acquire without waiting for its reply. */
int sbus_acquire_async(sd_bus *b, uint32_t helpers, uint32_t min, uint64_t wait_usec);
int sbus_release(sd_bus *b, const char *path, char *err);
int sbus_shrink(sd_bus *b, const char *path, uint32_t count, uint32_t *granted, char *err);
int sbus_lease_u(sd_bus *b, const char *path, const char *property, uint32_t *ret, char *err);
int sbus_ping(sd_bus *b);

/* ---- the broker's books ----------------------------------------------------------------- */

typedef struct SLease {
        char path[STRESS_PATH_MAX];
        char owner[STRESS_NAME_MAX];
        char tag[72];
        uint32_t uid, pid, granted;
} SLease;

typedef struct SNode {
        int32_t node;
        uint32_t cpus, max, in_use;
} SNode;

typedef struct Books {
        uint32_t max_helpers, in_use, leases, waiting;  /* one GetAll: consistent */
        SNode nodes[64];
        size_t n_nodes;
        SLease *list;           /* ListLeases, a moment later */
        size_t n_list;
        long long list_sent_ms; /* fixture_now_ms() just before ListLeases was sent */
} Books;

/* GetAll of the broker's properties only (one round trip). */
int books_read_counts(sd_bus *b, Books *k);
/* GetAll, then ListLeases. */
int books_read(sd_bus *b, Books *k);
void books_done(Books *k);
const SLease *books_find(const Books *k, const char *path);
uint32_t books_list_sum(const Books *k);
/* The invariants that hold at any moment: InUse <= MaxHelpers, every node's use within its
 * cap, the nodes' use adding up to InUse, the listed grants within MaxHelpers. With exact
 * (nothing moved between the two calls), also: the listed grants add up to InUse and
 * there are Leases of them. Returns the number broken; msg tells the first. */
unsigned books_violations(const Books *k, bool exact, char *msg, size_t size);
/* Poll until InUse, Leases and Waiting are all 0 (or the settle bound); the last read. */
void books_wait_empty(sd_bus *b, Books *k);
/* Poll until Waiting is waiting (true) or the settle bound passes (false); the last read. */
bool books_wait_waiting(sd_bus *b, Books *k, uint32_t waiting);

/* ---- agents: client processes driven over a socket --------------------------------------- */

typedef struct Agent {
        pid_t pid;
        int fd;
        uid_t uid;
} Agent;

typedef enum AgentOp {
        AGENT_OPEN,             /* open connection conn; reply: its unique name */
        AGENT_ACQUIRE,          /* helpers, min, wait_usec, tag, node, strict_node, ttl_usec;
                                 * reply: path, granted */
        AGENT_ACQUIRE_ASYNC,    /* send it, do not wait for the reply */
        AGENT_RELEASE,          /* path */
        AGENT_SHRINK,           /* path, count; reply: granted */
        AGENT_GRANTED,          /* path; reply: its Granted property */
        AGENT_CLOSE,            /* close connection conn: its owner goes away */
        AGENT_RUN,              /* fn(agent's connections, arg) in the agent */
} AgentOp;

typedef struct AgentConns {
        sd_bus **bus;
        unsigned n;
        const char *address;
} AgentConns;

/* Runs in the agent: 0 or -errno; msg (STRESS_ERROR_MAX) says why. */
typedef int (*AgentFn)(AgentConns *conns, void *arg, char *msg);

typedef struct AgentCmd {
        AgentOp op;
        unsigned conn;
        uint32_t helpers, min, count;
        uint64_t wait_usec, ttl_usec;
        bool on_node, strict_node;      /* on_node false: node -1 */
        int32_t node;
        char path[STRESS_PATH_MAX];
        char tag[32];
        AgentFn fn;             /* AGENT_RUN: valid in the agent, a fork of this process */
        void *arg;
} AgentCmd;

typedef struct AgentReply {
        int r;
        uint32_t granted;
        char path[STRESS_PATH_MAX];
        char error[STRESS_ERROR_MAX];
        char unique[STRESS_NAME_MAX];
} AgentReply;

/* Fork an agent that becomes uid and serves up to max_conns connections to address. */
int agent_spawn(Agent *a, uid_t uid, unsigned max_conns, const char *address);
int agent_send(Agent *a, const AgentCmd *c);
/* -ETIMEDOUT after timeout_ms, -EPIPE if the agent died. */
int agent_recv(Agent *a, AgentReply *r, int timeout_ms);
/* Send and wait (STRESS_SETTLE_MS); the call's own result is r->r. */
int agent_call(Agent *a, const AgentCmd *c, AgentReply *r);
/* SIGKILL and reap. */
void agent_kill(Agent *a);
/* Close its socket (it exits), reap within a bound, else kill. */
void agent_stop(Agent *a);

/* ---- figures ---------------------------------------------------------------------------- */

/* The p-th percentile (0-100) of v (sorted in place), nearest rank. */
double stress_percentile(double *v, size_t n, double p);
/* VmHWM of pid in KiB, or -errno. */
long stress_vm_hwm_kib(pid_t pid);
/* How many lines of paddd's log contain needle (case-insensitive); the last of them goes
 * to buf ("" if none). -errno if the log cannot be read. */
int stress_log_find(Fixture *f, const char *needle, char *buf, size_t size);
/* Shared anonymous memory for children to report into; zeroed, never freed. */
void *stress_shared(size_t size);
