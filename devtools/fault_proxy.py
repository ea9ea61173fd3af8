"""A fault-injecting proxy between a client (the controller) and the Kubernetes API server, for the reliability
suite (issue 13) and for counting API requests (benchmarks).

It is its own process, listens on loopback only (plain HTTP: point a token kubeconfig's server at it) and forwards
to the API server over TLS, with the client's own Authorization header. A configurable share of the requests whose
User-Agent contains ``--only-agent`` is spoiled, each with one fault chosen among the enabled kinds:

    500      an InternalError Status, the request not forwarded
    429      TooManyRequests with Retry-After: 1, not forwarded
    409      a Conflict Status ("the object has been modified") for PUT/PATCH/DELETE, not forwarded
    stall    forwarded (the write is applied), the answer held past the client's timeout (``--stall``)
    reset    the connection reset, before forwarding or after (a write applied that the client never hears of)
    latency  the answer delayed by ``--latency`` seconds

Everything is counted: requests and writes per User-Agent, faults per kind, and a log of writes (time, agent,
method, path, status) to check that two replicas never acted at the same time. Read and change it at run time:

    GET  /__fault_proxy/stats            the counts and the write log, as JSON
    POST /__fault_proxy/config           {"rate": 0.2, "kinds": ["500", "reset"], "only_agent": "controller"}
    POST /__fault_proxy/reset            zero the counts

    python -m devtools.fault_proxy --upstream https://127.0.0.1:6443 --ca ca.crt --port-file port \\
        --rate 0.1 --seed 7 --lifetime 1800

It exits by itself after ``--lifetime`` seconds (bounded in time: a forgotten proxy does not outlive its test run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys
import time
from collections import Counter
from typing import Any

import h11
import httpx

KINDS = ("500", "429", "409", "stall", "reset", "latency")
#: Kinds that make sense only for some methods: a 409 Conflict answers an update, never a read or a create.
ONLY_FOR = {"409": {"PUT", "PATCH", "DELETE"}}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "proxy-connection", "te", "upgrade"}
CONTROL = "/__fault_proxy/"


def status_body(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


def resource_of(path: str) -> str:
    """``/apis/apps/v1/namespaces/x/deployments/web/scale?..`` -> ``deployments/scale``: what a request touched,
    without names, for counting."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"]:
        parts = parts[2:]
    elif parts[:1] == ["apis"]:
        parts = parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    if not parts:
        return "(discovery)"
    return parts[0] + ("/" + parts[2] if len(parts) > 2 else "")


def verb_of(method: str, path: str) -> str:
    """The HTTP method, except that a GET is told apart as the API server's audit log does: ``LIST`` (no name),
    ``WATCH`` (``watch=true``) or ``GET`` (one object)."""
    if method != "GET":
        return method
    if "watch=true" in path.split("?", 1)[-1] or "watch=1" in path.split("?", 1)[-1]:
        return "WATCH"
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    return "GET" if len(parts) >= 2 else "LIST"


class Proxy:
    def __init__(self, upstream: str, *, ca: str | None, rate: float = 0.0, kinds: tuple[str, ...] = KINDS,
                 only_agent: str = "", seed: int | None = None, stall: float = 5.0, latency: float = 0.3) -> None:
        self.upstream = upstream.rstrip("/")
        self.ca = ca
        self.rate, self.kinds, self.only_agent = rate, tuple(kinds), only_agent
        self.stall, self.latency = stall, latency
        self.random = random.Random(seed)
        self.client: httpx.AsyncClient | None = None
        self.reset_counts()

    def reset_counts(self) -> None:
        self.requests: Counter[str] = Counter()  # "agent method resource"
        self.faults: Counter[str] = Counter()
        self.writes: list[dict[str, Any]] = []
        self.started = time.time()

    def stats(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "faults": dict(self.faults), "writes": self.writes,
                "config": {"rate": self.rate, "kinds": list(self.kinds), "only_agent": self.only_agent},
                "since": self.started}

    def configure(self, change: dict[str, Any]) -> None:
        if "rate" in change:
            rate = float(change["rate"])
            if not 0.0 <= rate <= 1.0:
                raise ValueError("rate must be between 0 and 1")
            self.rate = rate
        if "kinds" in change:
            kinds = tuple(str(k) for k in change["kinds"])
            unknown = set(kinds) - set(KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
            self.kinds = kinds
        if "only_agent" in change:
            self.only_agent = str(change["only_agent"])
        if "seed" in change:
            self.random.seed(change["seed"])

    def choose_fault(self, method: str, agent: str, path: str) -> str | None:
        if not self.rate or (self.only_agent and self.only_agent not in agent):
            return None
        if self.random.random() >= self.rate:
            return None
        possible = [k for k in self.kinds if method in ONLY_FOR.get(k, {method})]
        # A watch is long by design: stalling it proves nothing, and a reset is its ordinary end.
        if "watch=" in path:
            possible = [k for k in possible if k in ("500", "429", "latency")]
        return self.random.choice(possible) if possible else None

    # -- serving ------------------------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> asyncio.AbstractServer:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the fault proxy listens on loopback only")
        context = ssl.create_default_context(cafile=self.ca) if self.ca else True
        self.client = httpx.AsyncClient(verify=context, timeout=httpx.Timeout(None, connect=5.0))
        return await asyncio.start_server(self.connection, host, port)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    return
                if not await self.serve(conn, writer, request, body):
                    return
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[Any, bytes]:
        request, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None, b""
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body

    async def serve(self, conn: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request,
                    body: bytes) -> bool:
        """Answer one request (read whole); False when the connection must end."""
        received = time.time()
        method = request.method.decode()
        path = request.target.decode()
        headers = [(k.decode().lower(), v.decode()) for k, v in request.headers]
        agent = next((v for k, v in headers if k == "user-agent"), "")
        if path.startswith(CONTROL):
            return await self._control(conn, writer, method, path, body)
        self.requests[f"{agent} {verb_of(method, path)} {resource_of(path)}"] += 1
        fault = self.choose_fault(method, agent, path)
        if fault:
            self.faults[fault] += 1
        if fault == "500":
            return await self._answer(conn, writer, 500, status_body(500, "InternalError",
                                                                     "fault proxy: an injected internal error"))
        if fault == "429":
            return await self._answer(conn, writer, 429, status_body(429, "TooManyRequests",
                                                                     "fault proxy: too many requests"),
                                      extra=[("Retry-After", "1")])
        if fault == "409":
            return await self._answer(conn, writer, 409, status_body(
                409, "Conflict", "fault proxy: Operation cannot be fulfilled: the object has been modified; please "
                                 "apply your changes to the latest version and try again"))
        reset_after = fault == "reset" and self.random.random() < 0.5
        if fault == "reset" and not reset_after:
            writer.transport.abort()
            return False
        if fault == "latency":
            await asyncio.sleep(self.latency)
        assert self.client is not None
        forward = [(k, v) for k, v in headers if k not in HOP_BY_HOP and k != "content-length"]
        upstream_request = self.client.build_request(method, self.upstream + path, headers=forward,
                                                     content=body or None)
        try:
            response = await self.client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return await self._answer(conn, writer, 502, status_body(502, "ServiceUnavailable",
                                                                     f"fault proxy: upstream: {exc}"))
        try:
            if method in WRITES:
                self.writes.append({"time": time.time(), "received": received, "agent": agent, "method": method,
                                    "path": path.split("?", 1)[0], "status": response.status_code})
            if reset_after:
                writer.transport.abort()
                return False
            if fault == "stall":
                content = await response.aread()
                await asyncio.sleep(self.stall)
                return await self._answer(conn, writer, response.status_code, content,
                                          extra=self._response_headers(response, drop_length=True))
            writer.write(conn.send(h11.Response(status_code=response.status_code,
                                                headers=self._response_headers(response))))
            async for chunk in response.aiter_raw():
                writer.write(conn.send(h11.Data(data=chunk)))
                await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            return True
        except httpx.HTTPError:
            writer.transport.abort()
            return False
        finally:
            await response.aclose()

    @staticmethod
    def _response_headers(response: httpx.Response, *, drop_length: bool = False) -> list[tuple[str, str]]:
        skip = HOP_BY_HOP | ({"content-length", "content-encoding"} if drop_length else set())
        return [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, code: int, content: bytes,
                      extra: list[tuple[str, str]] | None = None) -> bool:
        headers = [(k, v) for k, v in (extra or []) if k.lower() != "content-length"]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(content))))
        try:
            writer.write(conn.send(h11.Response(status_code=code, headers=headers)))
            writer.write(conn.send(h11.Data(data=content)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (ConnectionError, h11.LocalProtocolError):
            return False
        return True

    async def _control(self, conn: h11.Connection, writer: asyncio.StreamWriter, method: str, path: str,
                       body: bytes) -> bool:
        what = path[len(CONTROL):].split("?", 1)[0]
        try:
            if what == "stats" and method == "GET":
                pass
            elif what == "config" and method == "POST":
                self.configure(json.loads(body or b"{}"))
            elif what == "reset" and method == "POST":
                self.reset_counts()
            else:
                return await self._answer(conn, writer, 404, b'{"error": "no such control endpoint"}')
        except (ValueError, TypeError) as exc:
            return await self._answer(conn, writer, 400, json.dumps({"error": str(exc)}).encode())
        return await self._answer(conn, writer, 200, json.dumps(self.stats()).encode())


async def main_async(args: argparse.Namespace) -> None:
    kinds = tuple(k for k in args.kinds.split(",") if k)
    proxy = Proxy(args.upstream, ca=args.ca, rate=args.rate, kinds=kinds, only_agent=args.only_agent,
                  seed=args.seed, stall=args.stall, latency=args.latency)
    proxy.configure({"kinds": kinds, "rate": args.rate})
    host, _, port = args.listen.rpartition(":")
    server = await proxy.start(host, int(port))
    bound = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(bound))
        import os

        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"fault proxy on http://{host}:{bound} -> {args.upstream}", file=sys.stderr, flush=True)
    try:
        await asyncio.wait_for(server.serve_forever(), args.lifetime)
    except asyncio.TimeoutError:
        print("fault proxy: lifetime over, exiting", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.fault_proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the API server, https://HOST:PORT")
    parser.add_argument("--ca", help="the API server's CA certificate file")
    parser.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (port 0: any free one)")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--rate", type=float, default=0.0, help="share of matching requests to spoil (0-1)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated fault kinds ({','.join(KINDS)})")
    parser.add_argument("--only-agent", default="", help="spoil only requests whose User-Agent contains this")
    parser.add_argument("--seed", type=int, help="random seed (the same seed spoils the same requests)")
    parser.add_argument("--stall", type=float, default=5.0, help="seconds a stalled answer is held")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds of added latency")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="exit after this many seconds")
    args = parser.parse_args(argv)
    try:
        asyncio.run(main_async(args))
    except ValueError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
