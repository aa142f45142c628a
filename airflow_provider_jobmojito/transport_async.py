"""The asynchronous transport: one attempt through httpx on the event loop, no retries.

:class:`HttpxTransport` implements :class:`~airflow_provider_jobmojito.wire.AsyncTransport` for the
triggerer, with what the requests transport honours: ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``
(httpx reads them too), a CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (which
httpx would not read: :func:`tls_context`), no redirects followed, the same answer limits
(:class:`~airflow_provider_jobmojito.wire.AnswerBody`) and the same descriptions of failures.
httpx comes with every Airflow line.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING

import httpx

from airflow_provider_jobmojito.wire import (
    Answer,
    AnswerBody,
    NoAnswer,
    deadline_for,
    describe,
    tls_is_permanent,
    unsendable,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_jobmojito.wire import Request

#: Keep-alive connections kept per transport: the triggers of one connection share it.
KEEPALIVE_CONNECTIONS = 16


def tls_context() -> ssl.SSLContext | bool:
    """How to verify certificates, as requests would: the CA bundle in ``REQUESTS_CA_BUNDLE`` or
    ``CURL_CA_BUNDLE`` (a file or a folder) when set, else httpx's default (``True``: certifi)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        return True
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


class HttpxTransport:
    """Send requests with an ``httpx.AsyncClient``, once each.

    :param headers: headers on every request (``User-Agent``, ``Accept``).
    :param client: the httpx client; by default one built for the environment (proxies, CA).
    """

    def __init__(self, headers: Mapping[str, str], client: httpx.AsyncClient | None = None) -> None:
        self.headers = dict(headers)
        self.client = client or httpx.AsyncClient(
            verify=tls_context(),
            trust_env=True,
            limits=httpx.Limits(max_keepalive_connections=KEEPALIVE_CONNECTIONS),
        )

    async def send(self, request: Request, *, token: str | None, timeout: float) -> Answer:
        """Send ``request`` once, with ``token`` as the bearer.

        :raises NoAnswer: when the connection failed, timed out, or the answer was too large or slow.
        """
        deadline = deadline_for(timeout)
        try:
            # httpx.Headers, not a dict: names are not case-sensitive, so a request's "accept"
            # replaces the transport's "Accept" and the token any "authorization", as requests
            # merges them; a dict sent both. update(), not headers[...] = (which encodes as UTF-8
            # what update refuses), and in the try: a value it cannot encode is unsendable.
            headers = httpx.Headers(self.headers)
            headers.update(request.headers)
            if token is not None:
                headers.update({"Authorization": f"Bearer {token}"})
            async with self.client.stream(
                request.method,
                request.url,
                headers=headers,
                content=request.body,
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
            ) as response:
                body = AnswerBody(response.status_code, deadline=deadline, timeout=timeout)
                async for chunk in response.aiter_bytes():
                    body.add(chunk)
        except httpx.TimeoutException as exc:
            raise NoAnswer(describe(exc), timed_out=True) from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise unsendable(exc) from None
        except httpx.ConnectError as exc:
            tls = isinstance(exc.__cause__ or exc.__context__, ssl.SSLError) or "SSL" in str(exc)
            permanent = tls and tls_is_permanent(exc)
            raise NoAnswer(describe(exc), timed_out=False, permanent=permanent) from exc
        except httpx.RequestError as exc:  # a cut connection, a protocol or decoding error mid-answer
            raise NoAnswer(describe(exc), timed_out=False) from exc
        except (ValueError, UnicodeError) as exc:  # a header value HTTP cannot carry
            raise unsendable(exc) from None
        return Answer(response.status_code, response.headers, body.value())

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
