/* notify.h: sd_notify messages (READY=1, RELOADING=1, STATUS=, STOPPING=1) that never block
 * the broker. sd_notify() blocks while the receiver's queue is full (10 datagrams by
 * default), which would stall every client behind a supervisor that reads slowly (a test
 * fixture between its waits). The Notifier sends without blocking, keeps what did not fit
 * in order and retries from a timer; a newer STATUS= replaces one still waiting. */
#pragma once

#include <systemd/sd-event.h>

typedef struct Notifier Notifier;

/* Reads $NOTIFY_SOCKET; without it every send is a no-op. */
int notifier_new(sd_event *event, Notifier **ret);
Notifier *notifier_free(Notifier *n);

/* Queue text (e.g. "READY=1") and send what the receiver takes now. 0 or -ENOMEM. */
int notifier_send(Notifier *n, const char *text);
/* The same for "STATUS=<status>", replacing a STATUS= not sent yet. */
int notifier_send_status(Notifier *n, const char *status);
