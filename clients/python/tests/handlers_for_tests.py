"""Handlers the tests' workers run: ``pyecho`` returns its payload (``boom`` raises,
``die`` ends the process), ``pyasync`` is an ``async def`` that upper-cases."""

import asyncio
import os

from weft_queue.handler import handler, serve


@handler("pyecho")
def pyecho(payload: bytes) -> bytes:
    if payload == b"boom":
        raise ValueError("asked to fail")
    if payload == b"die":
        os._exit(3)
    return payload


@handler("pyasync")
async def pyasync(payload: bytes) -> str:
    await asyncio.sleep(0)
    return payload.decode().upper()


if __name__ == "__main__":
    serve()
