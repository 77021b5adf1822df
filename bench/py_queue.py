#!/usr/bin/env python3
"""The work queue from Python: TASKS tasks of HANDLER with PAYLOAD-byte payloads, submitted
as one batch with weft_queue's blocking client and gathered as futures with its
DeferredList; prints one JSON line (tasks per second).

    py_queue.py URL TASKS HANDLER PAYLOAD
"""

import json
import sys
import time

from weft_queue import Client, Completed, DeferredList


def main():
    url, tasks, handler, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    payload = b"x" * size
    with Client(url) as client:
        DeferredList(client.map(handler, [payload] * 100)).result(timeout=60)  # warm: processes started
        started = time.perf_counter()
        futures = client.run_tasks([(handler, payload)] * tasks)
        fired = DeferredList(futures, consume_errors=True).result(timeout=3600)
        seconds = time.perf_counter() - started
        assert isinstance(fired, Completed)
        failed = sum(1 for ok, _ in fired.results if not ok)
        if failed or any(v != payload for _, v in fired.results):
            sys.exit(f"{failed} of {tasks} tasks failed or came back wrong")
    print(json.dumps({"tasks": tasks, "seconds": round(seconds, 4), "tasks_per_second": round(tasks / seconds)}))


if __name__ == "__main__":
    main()
