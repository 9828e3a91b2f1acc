"""Any exception a worker thread can raise, as the one SdprovError that reports it.

A failing worker (a resolution in `lock`, a download in `sync`) must become that entry's
failure with a message a user can act on, never a traceback that tears down the pool. The
network's own exceptions land here when the retry budget is spent.
"""

from __future__ import annotations

import logging

from provision.errors import InternalError, SdprovError, from_os_error
from provision.net.http import RETRYABLE_EXCEPTIONS, RetryPolicy, gave_up

log = logging.getLogger(__name__)


def as_sdprov_error(exc: BaseException, what: str = "") -> SdprovError:
    """`exc` as a user-facing error; the traceback of a bug goes to the debug log."""
    if isinstance(exc, SdprovError):
        return exc
    if isinstance(exc, RETRYABLE_EXCEPTIONS):
        return gave_up(exc, what or "request", RetryPolicy.from_env().attempts)
    if isinstance(exc, OSError):
        return from_os_error(exc)
    log.debug("internal error%s", f" ({what})" if what else "", exc_info=exc)
    return InternalError(exc)
