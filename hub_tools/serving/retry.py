"""The retry policy of every HTTP call to a model server: online chat completions and the Batch API alike.

Transient failures (connection refused or dropped, timeouts, 408, 429, 5xx) are retried up to
`max_retries` times (tenacity): a 429/503 that says `Retry-After` after the time it asks for, anything
else after an exponential backoff; every wait is capped by `max_retry_wait` and logged, so a paused run
says why. A stage that is stopping (`serving.parallel`) makes no further attempt and cuts a wait short.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC
from typing import TypeVar

from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential

try:  # huggingface_hub>=2 speaks HTTP through httpx2, 1.x through httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

from .parallel import pause, stopping

log = logging.getLogger("psycopref")
T = TypeVar("T")

# What InferenceClient and httpx raise for the network, as huggingface_hub's own http_backoff retries them:
# a refused or reset connection (NetworkError), a timeout, a connection dropped before a full answer.
NETWORK = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError, TimeoutError)
_BACKOFF = wait_exponential(multiplier=0.5, max=20)  # 0.5, 1, 2, 4 ... s when the server names no time


def status(err: BaseException | None) -> int | None:
    """The HTTP status of a failed request (InferenceClient's or httpx's error), else None."""
    if not isinstance(err, (HfHubHTTPError, httpx.HTTPStatusError)):
        return None
    return getattr(getattr(err, "response", None), "status_code", None)


def transient(err: BaseException) -> bool:
    """Worth another attempt: the network, a timeout, or a server saying 'not now' (408, 429, 5xx).

    A 200 whose body is not what was asked for (not JSON, no choices) is not retried: a body cut short
    in transit already fails as a dropped connection (Content-Length), so a complete bad body means a
    base_url that is not such a server (an HTML page, another API), which answers the same every time,
    and a real server has most likely generated, and billed, the answer already."""
    if isinstance(err, OfflineModeIsEnabled):  # a setting, not a network hiccup
        return False
    code = status(err)
    if code is not None:
        return code in (408, 429) or code >= 500
    return isinstance(err, NETWORK)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for: delta-seconds or an HTTP date (past dates: 0).
    None when absent or unreadable."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after(err: BaseException | None) -> float | None:
    """The wait a 429 or 503 answer asks for in its Retry-After header, if it names one."""
    if status(err) not in (429, 503):
        return None
    return parse_retry_after(err.response.headers.get("retry-after"))


def secs(seconds: float) -> str:
    return f"{round(seconds, 2):g}"


def describe(err: BaseException, timeout: float) -> str:
    """What went wrong, in words, without the server's body (it may quote the request) or any header."""
    code = status(err)
    if code is not None:
        return f"HTTP {code}"
    if isinstance(err, httpx.ConnectError):
        return "could not connect (refused or unreachable)"
    if isinstance(err, (httpx.TimeoutException, TimeoutError)):
        return f"no answer within the {timeout:g} s timeout"
    if isinstance(err, NETWORK):
        return "the connection dropped before a complete answer"
    return type(err).__name__


class Retrier:
    """The policy above for one endpoint: `label` names it in logs, `describe` words a failure."""

    def __init__(self, label: str, max_retries: int, max_retry_wait: float, describe: Callable[[BaseException], str]):
        self.label, self.max_retries, self.max_retry_wait, self.describe = label, max_retries, max_retry_wait, describe

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After when it names one, else exponential; capped either way."""
        asked = retry_after(state.outcome.exception())
        return min(_BACKOFF(state) if asked is None else asked, self.max_retry_wait)

    def _log_wait(self, state: RetryCallState) -> None:
        err = state.outcome.exception()
        why, asked = self.describe(err), retry_after(err)
        if asked is not None:
            why += f" asking to retry after {secs(asked)} s"
            if asked > self.max_retry_wait:
                why += f" (more than max_retry_wait={secs(self.max_retry_wait)})"
        log.info("%s: %s; retry %d of %d in %s s", self.label, why, state.attempt_number, self.max_retries,
                 secs(state.upcoming_sleep))

    def call(self, send: Callable[[], T], fail: Callable[[Exception, int], Exception]) -> T:
        """`send()` (one request) with retries; a final failure raises `fail(last error, attempts made)`."""
        attempts, last = 0, None

        @retry(retry=retry_if_exception(transient), stop=stop_after_attempt(self.max_retries + 1) | (lambda _: stopping()),
               wait=self._wait, before_sleep=self._log_wait, sleep=pause, reraise=True)
        def attempt():
            nonlocal attempts, last
            if last is not None and stopping():  # the stage stopped during the wait: no new request
                raise last
            attempts += 1
            try:
                return send()
            except Exception as err:
                last = err
                raise

        try:
            return attempt()
        except Exception as err:  # noqa: BLE001  (the caller words it, key-free)
            raise fail(err, attempts) from None
