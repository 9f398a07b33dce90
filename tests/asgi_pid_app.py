"""A minimal ASGI app for the server tests: it answers the pid of the process that served."""
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


def _with_startup(on_startup):
    async def lifespan_app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await on_startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await app(scope, receive, send)

    return lifespan_app


async def _slow_startup():
    import asyncio

    await asyncio.sleep(1.5)  # a worker that takes a while to start, as one connecting to its database


async def _killed_at_startup():
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would, each time it starts


slow_start_app = _with_startup(_slow_startup)
killed_at_startup_app = _with_startup(_killed_at_startup)
