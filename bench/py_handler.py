"""The benchmark's Python warm handler: pyecho returns its payload."""

from weft_queue.handler import handler, serve


@handler("pyecho")
def pyecho(payload: bytes) -> bytes:
    return payload


if __name__ == "__main__":
    serve()
