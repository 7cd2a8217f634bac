"""An httpx transport whose connections are plain asyncio streams (``http://`` endpoints only).

httpx reaches sockets through httpcore's anyio backend, which wraps every read and write in a
cancel scope, yields to the event loop before each write and rebuilds a dict of socket
attributes (with a ``getpeername`` system call) each time the pool checks an idle connection.
For a burst of calls that is a good share of the client's CPU, and since every request waits for
the others' pre-send work before its bytes leave, a burst of concurrent calls to a loopback
server took longer with it (benchmarks/bench_llm.py). httpcore accepts any
`httpcore.AsyncNetworkBackend`; this one is asyncio's own streams, with httpcore's exceptions.

TLS endpoints keep httpx's default transport (this backend has no ``start_tls``), and so do
proxies from the environment (httpx mounts its own transports for them).
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

_Socket = Any  # asyncio's transport socket (a TransportSocket)


@contextmanager
def _mapped(timeout_error: type[Exception], os_error: type[Exception]) -> Iterator[None]:
    """Raise httpcore's exception types, which httpx turns into its own (ConnectError...)."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout_error(str(exc) or "timed out") from exc
    except OSError as exc:
        raise os_error(str(exc) or type(exc).__name__) from exc


def _readable(sock: _Socket) -> bool:
    """Whether a read would not block: on an idle connection, the server closed it."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._writer.is_closing():
            raise httpcore.WriteError("the connection is closed")
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            if not self._writer.transport.get_write_buffer_size():
                # The socket took it all: `drain` cannot block (it only reports a lost
                # connection), so it needs no timeout (a timer per write, twice a request).
                await self._writer.drain()
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()  # waits while the send buffer is above its limit

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("TLS is not handled by this transport")

    def get_extra_info(self, info: str) -> Any:
        sock: _Socket = self._writer.get_extra_info("socket")
        if info == "is_readable":  # an idle kept-alive connection the server has closed
            return sock is not None and _readable(sock)
        if info == "socket":
            return sock
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                local = (local_address, 0) if local_address else None
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        sock: _Socket = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def asyncio_transport(limits: httpx.Limits, verify: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """An `httpx.AsyncHTTPTransport` (HTTP/1.1) whose connection pool uses asyncio streams.

    httpx's transport takes no network backend, so its pool is replaced by an equal one built
    with ours (`httpcore.AsyncConnectionPool` takes ``network_backend`` publicly).
    """
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_Backend(),
    )
    return transport
