"""The access layer turns what it cannot use into a KubeError with a message, never an exception its callers do not
expect (the controller's reconciles and follows, and the CLI, catch KubeError): an answer that is not JSON, a watch
line that is no event, a watch while the session is being replaced, a watch refused for its credentials (they are
loaded again, as for a request), and a client certificate reloaded after a 401 that cannot be used (the session that
worked is kept)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import pytest

from kubectl_pvc_restore import kube as k
from tests.fake_api import FakeApi, response


def Api(content: bytes, content_type: str) -> FakeApi:  # noqa: N802 - stands in for kr8s's class
    """kr8s's ``Api`` answering every request 200 with ``content``."""
    return FakeApi(lambda method, path: response(method, 200, content, content_type), session=True)


@pytest.mark.parametrize("content", [b"<html><body>Sign in</body></html>", b"{truncated"])
def test_an_answer_that_is_not_json_is_a_kube_error(content):
    kube = k.Kube(Api(content, "text/html"), namespace="apps")  # type: ignore[arg-type]

    async def main() -> BaseException | None:
        try:
            await kube.get(k.CONFIGMAPS, "c", "apps")
        except Exception as exc:  # noqa: BLE001 - the test looks at which
            return exc
        return None

    error = asyncio.run(main())
    assert type(error) is k.KubeError, error
    assert "is not JSON" in str(error) and "text/html" in str(error) and "https://test" in str(error)


@pytest.mark.parametrize("usable", [True, False])
def test_a_session_is_replaced_in_one_step(usable):
    """While the new session loads its certificate (an await: another task may run), requests go out on the session
    in use, never on none; a certificate that cannot be used leaves that session in place, and a usable one takes
    over with the same headers (the User-Agent the API server's audit log shows)."""
    api = Api(b"{}", "application/json")
    working = api._session
    working.headers["User-Agent"] = "kubectl-pvc_restore/test"
    seen: list[Any] = []
    kube = k.Kube(api, namespace="apps")  # type: ignore[arg-type]

    async def ssl_context() -> Any:
        await asyncio.sleep(0.01)  # a request runs meanwhile
        if not usable:
            raise ssl.SSLError("KEY_VALUES_MISMATCH")
        return True

    api.auth.ssl_context = ssl_context
    api.auth.token = "new-token"

    async def meanwhile() -> None:
        seen.append(api._session)
        await kube.get(k.CONFIGMAPS, "c", "apps")

    async def main() -> None:
        other = asyncio.create_task(meanwhile())
        if usable:
            await kube._replace_session()
        else:
            with pytest.raises(ssl.SSLError):
                await kube._replace_session()
        await other
        await kube.close()

    asyncio.run(main())
    assert seen == [working]
    if usable:
        assert api._session is not working and api._session.headers["User-Agent"] == "kubectl-pvc_restore/test"
        assert api._session.headers["Authorization"] == "Bearer new-token"
    else:
        assert api._session is working


@pytest.mark.parametrize("renewed", [True, False])
def test_a_watch_refused_for_its_credentials_loads_them_again(renewed):
    """A 401 to a watch (an expired token) reloads the credentials as a request's 401 does; the watch then ends with
    a KubeError (the caller follows again with them), or, when nothing changed, with the refusal itself."""
    kube = _watch_kube(answer=lambda: httpx.Response(401, json={"kind": "Status", "code": 401,
                                                              "message": "Unauthorized"}))
    reloads: list[int] = []

    async def reload() -> bool:
        reloads.append(1)
        return renewed

    kube._reload_credentials = reload  # type: ignore[method-assign]

    error = run_watch(kube)[1]
    assert reloads == [1] and isinstance(error, k.KubeError) and error.code == 401
    assert isinstance(error, k.Forbidden) is not renewed
    assert kube._auth_generation == (1 if renewed else 0)


def run_watch(kube: k.Kube) -> tuple[list[str], BaseException | None]:
    """The names a watch of PVCs yielded, and the exception it ended with."""
    async def main() -> tuple[list[str], BaseException | None]:
        seen: list[str] = []
        try:
            async for _, obj in kube.watch(k.PVCS, "apps", "1"):
                seen.append(obj["metadata"]["name"])
        except Exception as exc:  # noqa: BLE001 - the test looks at which
            return seen, exc
        return seen, None
    return asyncio.run(main())


def _watch_kube(lines: list[bytes] | None = None, *, answer: Any = None) -> k.Kube:
    """A Kube whose watch client answers every watch with ``lines`` (200), or with what ``answer()`` makes."""
    api = Api(b"{}", "application/json")  # requests are not what is tested: the watch client's answer is
    kube = k.Kube(api, namespace="apps")  # type: ignore[arg-type]
    answer = answer or (lambda: httpx.Response(200, content=b"\n".join(lines or [])))
    kube._watch_session = httpx.AsyncClient(base_url="https://test", transport=httpx.MockTransport(
        lambda request: answer()))
    kube._watch_session_for = api._session
    return kube


def test_a_watch_line_that_is_no_event_is_a_kube_error():
    """A line that is not a JSON object ends the watch with a KubeError (the caller lists again), never a ValueError
    or AttributeError that the follow paths would not expect."""
    good = b'{"type": "ADDED", "object": {"metadata": {"name": "p1", "resourceVersion": "5"}}}'

    for bad in (b"{not json", b'"a string"', b"[1, 2]", b'{"type": "ERROR", "object": [1]}'):
        seen, error = run_watch(_watch_kube([good, bad, good]))
        assert seen == ["p1"] and type(error) is k.KubeError, (bad, seen, error)
        assert "not a watch event" in str(error)


def test_a_watch_while_the_session_is_replaced_is_unreachable():
    kube = _watch_kube([])
    kube.api._session = None  # replaced this moment (a new client certificate)
    assert isinstance(run_watch(kube)[1], k.Unreachable)


def _certificate(name: str) -> tuple[str, str]:
    """A self-signed client certificate and its key, PEM, base64 (as a kubeconfig's ``*-data`` fields hold them)."""
    import base64
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return (base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            base64.b64encode(key_pem).decode())


@pytest.mark.parametrize("where", ["data", "files"])
def test_a_rotated_client_certificate_is_taken_and_leaves_no_copy_of_the_old_key(tmp_path, where):
    """After a 401 the credentials are loaded again; a new client certificate gets a new session. ``data``: kr8s wrote
    the kubeconfig's certificate and key to temporary files, and the copies of the old ones are removed (a private key
    must not pile up in /tmp at each rotation); only the new ones remain, in use. ``files``: the kubeconfig names its
    files, rewritten in place (as cert-manager's csi driver or a sidecar does): the change is noticed although the
    paths are the same, and the files are left alone."""
    import base64
    import os

    import kr8s.asyncio
    import yaml

    config = tmp_path / "kubeconfig"
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"

    def write(name: str) -> None:
        cert, key = _certificate(name)
        if where == "data":
            user = {"client-certificate-data": cert, "client-key-data": key}
        else:
            cert_file.write_bytes(base64.b64decode(cert))
            key_file.write_bytes(base64.b64decode(key))
            user = {"client-certificate": str(cert_file), "client-key": str(key_file)}
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))

    async def main() -> None:
        write("first")
        api = kr8s.asyncio.Api(bypass_factory=True, kubeconfig=str(config))
        await api.auth
        await api._create_session()
        kube = k.Kube(api, namespace="default")
        first = (api.auth.client_cert_file, api.auth.client_key_file)
        first_session = api._session
        assert all(os.path.exists(path) for path in first)

        write("second")
        assert await kube._reload_credentials()
        second = (api.auth.client_cert_file, api.auth.client_key_file)
        assert api._session is not first_session
        if where == "data":
            assert set(second).isdisjoint(first)
            assert not any(os.path.exists(path) for path in first)
        else:
            assert second == first == (str(cert_file), str(key_file))
        assert all(os.path.exists(path) for path in second)

        taken = api._session
        assert not await kube._reload_credentials()  # nothing changed: the session and the files in use stay
        assert api._session is taken and (api.auth.client_cert_file, api.auth.client_key_file) == second
        assert all(os.path.exists(path) for path in second)
        write("third")  # and again: the copies of the second go too
        assert await kube._reload_credentials()
        third = (api.auth.client_cert_file, api.auth.client_key_file)
        assert api._session is not taken and all(os.path.exists(path) for path in third)
        if where == "data":
            assert not any(os.path.exists(path) for path in second)
        await kube.close()
        if where == "data":
            _unlink_all(third)

    asyncio.run(main())


def _unlink_all(paths: Any) -> None:
    import os

    for path in paths:
        os.unlink(path)


def test_a_retired_watch_client_outlives_the_watches_it_carries():
    """After the session is replaced (a new client certificate), the old watch client is closed only once the longest
    watch sent on it may have ended (its read timeout), not after a request's timeout, which would cut a long watch
    off (and make its follower list everything again)."""
    kube = _watch_kube([])
    delays: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        call_later = loop.call_later
        loop.call_later = lambda delay, *args: (delays.append(delay), call_later(delay, *args))[1]  # type: ignore
        async for _ in kube.watch(k.PVCS, "apps", "1", timeout_seconds=120):
            pass
        old = kube._watch_session

        async def ssl_context() -> bool:
            return True

        kube.api.auth.ssl_context = ssl_context
        kube.api._session = httpx.AsyncClient(base_url="https://test")  # replaced
        await kube._watch_client(kube.api._session)
        assert kube._watch_session is not old and old in kube._retired_sessions
        await kube.close()

    asyncio.run(main())
    assert delays and max(delays) >= 120 + kube._timeout()


def test_close_closes_retired_clients_at_once_and_leaves_no_timer():
    """``close`` ends every connection before it returns: a retired client still waiting for its requests is closed
    then and its timer cancelled; one whose timer fired has finished closing; and one retired after ``close`` (by a
    request that was still waiting) is closed at once."""
    api = Api(b"{}", "application/json")
    kube = k.Kube(api, namespace="apps")  # type: ignore[arg-type]

    class SlowToClose(httpx.AsyncClient):
        async def aclose(self) -> None:
            await asyncio.sleep(0.1)  # its connections take a while to end
            await super().aclose()

    waiting, late = httpx.AsyncClient(base_url="https://test"), httpx.AsyncClient(base_url="https://test")
    fired = SlowToClose(base_url="https://test")

    async def main() -> asyncio.TimerHandle:
        timeout = kube._timeout
        kube._timeout = lambda: -10.0  # type: ignore[method-assign] # its timer fires at once
        kube._retire(fired, after=-10.0)
        await asyncio.sleep(0.01)  # the timer's callback runs: the client starts closing in a task of its own
        assert fired not in kube._retired_sessions and kube._closing
        kube._timeout = timeout  # type: ignore[method-assign]
        kube._retire(waiting)
        (timer,) = kube._retire_timers
        assert not waiting.is_closed
        await kube.close()
        assert not kube._closing and waiting.is_closed and fired.is_closed
        kube._retire(late)
        assert not kube._retire_timers
        await kube.close()  # again: waits for the late one
        return timer

    timer = asyncio.run(main())
    assert late.is_closed and api._session.is_closed and timer.cancelled()
