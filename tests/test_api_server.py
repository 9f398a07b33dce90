"""The API's HTTP protocol turns Nagle's algorithm off on every connection it accepts, also when
uvicorn hands it a socket bound without IPPROTO_TCP (`--workers N`): otherwise each keep-alive
request waits for the client's delayed ACK."""
import socket

import pytest

from api.server import EVENT_LOOP, HTTP_PROTOCOL, NoDelayHttpToolsProtocol, set_no_delay, uvicorn_args


@pytest.mark.parametrize("loop", [EVENT_LOOP, "asyncio"])
def test_a_keep_alive_connection_to_a_worker_socket_has_nagle_off(loop):
    """uvicorn's own path for --workers N: Config.bind_socket() (proto 0), then the server on it."""
    import http.client
    import threading
    import time

    import uvicorn

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=HTTP_PROTOCOL, loop=loop, log_level="warning",
                            lifespan="off")
    sock = config.bind_socket()
    assert sock.proto == 0  # why asyncio would not set TCP_NODELAY on accepted connections itself
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    conn = None
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.01)
        conn = http.client.HTTPConnection(*sock.getsockname()[:2], timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.read() == b"ok"
        (protocol,) = tuple(server.server_state.connections)  # the keep-alive connection, still open
        assert isinstance(protocol, NoDelayHttpToolsProtocol)
        accepted = protocol.transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        if conn is not None:
            conn.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_transport_without_a_tcp_socket_is_left_alone():
    class NoSocket:
        def get_extra_info(self, name):
            return None

    assert set_no_delay(NoSocket()) is False


def test_every_launch_of_the_api_uses_that_protocol_on_uvloop():
    assert HTTP_PROTOCOL == f"{NoDelayHttpToolsProtocol.__module__}:{NoDelayHttpToolsProtocol.__name__}"
    args = uvicorn_args(host="127.0.0.1", port=8000, workers=2)
    assert args[args.index("--http") + 1] == HTTP_PROTOCOL
    assert args[args.index("--loop") + 1] == EVENT_LOOP == "uvloop"
    import inspect

    import bench.api_load
    import cli.api
    import cli.flows

    for module in (cli.api, cli.flows, bench.api_load):
        source = inspect.getsource(module)
        assert ("HTTP_PROTOCOL" in source and "EVENT_LOOP" in source) or "uvicorn_args(" in source, module.__name__
