"""The asynchronous transport: one attempt through httpx on the event loop, no retries.

:class:`HttpxTransport` implements :class:`~airflow_provider_jobmojito.wire.AsyncTransport` for the
triggerer, with what the requests transport honours: ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``
(httpx reads them too), a CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (which
httpx would not read: :func:`tls_context`), no redirects followed, the same answer limits
(:class:`~airflow_provider_jobmojito.wire.AnswerBody`, applied as the body is decoded, in bounded
steps: :class:`BoundedDecoder`) and the same descriptions of failures.
httpx comes with every Airflow line.
"""

from __future__ import annotations

import os
import ssl
import zlib
from typing import TYPE_CHECKING, Any

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
    from collections.abc import Iterator, Mapping

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


#: What this transport asks the server to compress with: what :class:`BoundedDecoder` decodes.
ACCEPT_ENCODING = "gzip, deflate"
#: The most one decoding step may produce. httpx decodes each read from the socket whole, which
#: turns 64 KiB of gzip into 64 MiB at once; decoding in bounded steps lets the answer's size cap
#: (:class:`~airflow_provider_jobmojito.wire.AnswerBody`) stop a compressed bomb early, as urllib3
#: does for requests.
DECODE_STEP = 64 * 1024


class BoundedDecoder:
    """Decode a body's ``Content-Encoding`` (none, ``gzip`` or ``deflate``), :data:`DECODE_STEP`
    bytes at a time.

    :param encoding: the answer's ``Content-Encoding`` header.
    :raises NoAnswer: (permanent) for an encoding it does not decode; (transient) for a body that
        does not decode, as a cut connection would leave it.
    """

    def __init__(self, encoding: str) -> None:
        name = encoding.strip().lower()
        self._name = name
        self._zlib: Any = None
        if name in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._zlib = zlib.decompressobj()
        elif name not in ("", "identity"):
            raise NoAnswer(
                f"the answer is encoded as {encoding[:40]!r}, which this client does not decode "
                f"(it asks for {ACCEPT_ENCODING})",
                timed_out=False,
                permanent=True,
            )
        self._first = True

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in steps of at most :data:`DECODE_STEP`."""
        if self._zlib is None:
            yield data
            return
        try:
            if self._first and data and self._name == "deflate":
                self._first = False
                self._zlib = _deflate_decoder_for(data)
            step = self._zlib.decompress(data, DECODE_STEP)
            yield step
            while self._zlib.unconsumed_tail:
                yield self._zlib.decompress(self._zlib.unconsumed_tail, DECODE_STEP)
        except zlib.error as exc:
            raise NoAnswer(f"the answer's {self._name} body does not decode: {exc}", timed_out=False) from exc

    def flush(self) -> Iterator[bytes]:
        """What is left once the body has arrived."""
        if self._zlib is not None:
            yield self._zlib.flush()


def _deflate_decoder_for(first: bytes) -> Any:
    """``deflate`` is meant to be zlib-wrapped, yet some servers send raw deflate: try the first."""
    try:
        zlib.decompressobj().decompress(first[:2])
    except zlib.error:
        return zlib.decompressobj(-zlib.MAX_WBITS)
    return zlib.decompressobj()


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
            headers.update({"Accept-Encoding": ACCEPT_ENCODING})
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
                decoder = BoundedDecoder(response.headers.get("Content-Encoding", ""))
                async for raw in response.aiter_raw():
                    for chunk in decoder.decode(raw):
                        body.add(chunk)
                for chunk in decoder.flush():
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
