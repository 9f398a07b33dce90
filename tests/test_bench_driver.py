"""The load bench's own HTTP client (bench.api_load.LeanClient) reads answers as a real client
would: the figures it prints are only as good as its reading of each status and body."""
import asyncio
import json

from bench.api_load import LeanClient


async def _serve_two_answers(seen: list[bytes]):
    async def handle(reader, writer):
        for answer in (
            b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 14\r\n\r\n{"version": 3}',
            b"HTTP/1.1 409 Conflict\r\ncontent-type: application/problem+json\r\ntransfer-encoding: chunked\r\n\r\n"
            b'9\r\n{"rule": \r\n12\r\n"conflict", "x":1}\r\n0\r\n\r\n',
        ):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            seen.append(head + await reader.readexactly(length))
            writer.write(answer)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_the_bench_client_reads_sized_and_chunked_answers_on_one_kept_alive_connection():
    async def scenario():
        seen: list[bytes] = []
        server = await _serve_two_answers(seen)
        port = server.sockets[0].getsockname()[1]
        async with LeanClient(f"http://127.0.0.1:{port}") as client:
            first = await client.post("/dossiers/1/commands/take_for_review", json={"a": 1},
                                      headers={"If-Match": '"2"'})
            second = await client.get("/dossiers/1")
        server.close()
        await server.wait_closed()
        return seen, first, second

    seen, first, second = asyncio.run(scenario())
    assert (first.status_code, first.json()) == (200, {"version": 3})
    assert second.status_code == 409 and second.json() == {"rule": "conflict", "x": 1}
    assert second.headers["content-type"] == "application/problem+json"
    assert len(seen) == 2  # both requests on the one connection the server accepted
    request = seen[0].decode()
    assert request.startswith("POST /dossiers/1/commands/take_for_review HTTP/1.1\r\n")
    assert 'If-Match: "2"' in request and "Content-Type: application/json" in request
    assert json.loads(request.split("\r\n\r\n", 1)[1]) == {"a": 1}
