/* notify.c: a non-blocking sd_notify for paddd. Owns the $NOTIFY_SOCKET address, the queue
 * of messages the receiver has not taken yet (in order) and the retry timer. One datagram
 * per message, as sd_notify() sends them; credentials come from the kernel. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "list.h"
#include "notify.h"
#include "util.h"

#define NOTIFY_RETRY_USEC 20000u

typedef struct NotifyMessage NotifyMessage;
struct NotifyMessage {
        char *text;
        LIST_FIELDS(NotifyMessage, queue);
};

struct Notifier {
        sd_event_source *retry;
        struct sockaddr_un address;
        socklen_t address_len;          /* 0: no NOTIFY_SOCKET */
        int fd;
        NotifyMessage *queue;
        unsigned n_queued;
};

static void notify_message_free(Notifier *n, NotifyMessage *msg) {
        LIST_REMOVE(queue, n->queue, msg);
        n->n_queued--;
        free(msg->text);
        free(msg);
}

/* 1 sent, 0 the receiver is full, -errno. */
static int notifier_send_one(Notifier *n, const char *text) {
        if (sendto(n->fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *) &n->address, n->address_len) >= 0)
                return 1;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

static void notifier_flush(Notifier *n) {
        while (n->queue) {
                int r = notifier_send_one(n, n->queue->text);

                if (r == 0) {
                        (void) sd_event_source_set_time_relative(n->retry, NOTIFY_RETRY_USEC);
                        (void) sd_event_source_set_enabled(n->retry, SD_EVENT_ONESHOT);
                        return;
                }
                /* sent, or the receiver is gone: nothing to retry */
                notify_message_free(n, n->queue);
        }
}

static int notifier_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        notifier_flush(userdata);
        return 0;
}

int notifier_new(sd_event *event, Notifier **ret) {
        Notifier *n;
        const char *e = getenv("NOTIFY_SOCKET");
        size_t len;
        int r;

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->fd = -1;
        *ret = n;
        if (!e || (e[0] != '/' && e[0] != '@') || (len = strlen(e)) >= sizeof n->address.sun_path)
                return 0;       /* not supervised (or an address sd_notify would not use either) */

        n->address.sun_family = AF_UNIX;
        memcpy(n->address.sun_path, e, len);
        if (e[0] == '@')
                n->address.sun_path[0] = '\0';
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (n->fd < 0)
                r = -errno;
        else
                r = sd_event_add_time(event, &n->retry, CLOCK_MONOTONIC, 0, 1000, notifier_on_retry, n);
        if (r >= 0)
                r = sd_event_source_set_enabled(n->retry, SD_EVENT_OFF);
        if (r < 0) {
                *ret = notifier_free(n);
                return r;
        }
        n->address_len = offsetof(struct sockaddr_un, sun_path) + len + (e[0] == '/');
        return 0;
}

Notifier *notifier_free(Notifier *n) {
        if (!n)
                return NULL;
        while (n->queue)
                notify_message_free(n, n->queue);
        sd_event_source_disable_unref(n->retry);
        safe_close(n->fd);
        free(n);
        return NULL;
}

static int notifier_queue(Notifier *n, const char *text, bool replace_status) {
        NotifyMessage *msg, *tail = NULL;

        if (!n || n->address_len == 0)
                return 0;
        LIST_FOREACH(queue, i, n->queue)
                tail = i;
        if (replace_status && tail && strncmp(tail->text, "STATUS=", 7) == 0) {
                char *t = strdup(text);

                if (!t)
                        return -ENOMEM;
                free(tail->text);
                tail->text = t;
                return 0;
        }

        msg = calloc(1, sizeof(*msg));
        if (!msg || !(msg->text = strdup(text))) {
                free(msg);
                return -ENOMEM;
        }
        LIST_APPEND(queue, n->queue, msg);
        n->n_queued++;
        if (n->queue == msg)
                notifier_flush(n);      /* otherwise the retry timer is already armed */
        return 0;
}

int notifier_send(Notifier *n, const char *text) {
        return notifier_queue(n, text, false);
}

int notifier_send_status(Notifier *n, const char *status) {
        _cleanup_free_ char *text = malloc(strlen(status) + 8);

        if (!text)
                return -ENOMEM;
        strcpy(text, "STATUS=");
        strcat(text, status);
        return notifier_queue(n, text, true);
}
