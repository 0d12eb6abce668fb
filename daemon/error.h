/* error.h: the broker's expected outcomes. Functions in the daemon return 0 on success,
 * a negative errno on failure, or one of these positive codes for an outcome the caller
 * expected and must answer with a named D-Bus error. bus-error.c maps them to the contract's
 * names (broker-contract.h) in one switch. */
#pragma once

typedef enum PadError {
        PAD_ERROR_BUSY = 1,         /* org.padata.Broker.Error.Busy */
        PAD_ERROR_TIMEOUT,          /* org.padata.Broker.Error.Timeout */
        PAD_ERROR_NO_SUCH_NODE,     /* org.padata.Broker.Error.NoSuchNode */
        PAD_ERROR_LIMITS_EXCEEDED,  /* org.freedesktop.DBus.Error.LimitsExceeded */
        PAD_ERROR_ACCESS_DENIED,    /* org.freedesktop.DBus.Error.AccessDenied */
        PAD_ERROR_INVALID_ARGS,     /* org.freedesktop.DBus.Error.InvalidArgs */
        PAD_ERROR_NOT_SUPPORTED,    /* org.freedesktop.DBus.Error.NotSupported */
        PAD_ERROR_NEVER_FITS,       /* org.padata.Broker.Error.Busy: min above a cap */
        _PAD_ERROR_MAX,
} PadError;
