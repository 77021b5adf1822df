"""Job specs and statuses, as plain Python values."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Union

from ._proto import weft_pb2 as pb

__all__ = ["JobStatus", "WorkerInfo", "job_spec"]

_STATES = {
    pb.JOB_STATE_RUNNING: "running",
    pb.JOB_STATE_SUCCEEDED: "succeeded",
    pb.JOB_STATE_FAILED: "failed",
    pb.JOB_STATE_CANCELLED: "cancelled",
    pb.JOB_STATE_WAITING: "waiting",
    pb.JOB_STATE_QUEUED: "queued",
}


@dataclass(frozen=True)
class JobStatus:
    """A job as the coordinator sees it."""

    id: str
    name: str
    state: str
    phase: str
    maps_total: int
    maps_done: int
    reduces_total: int
    reduces_done: int
    error: str
    output: str
    owner: str
    counters: Dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")

    @classmethod
    def from_wire(cls, s: pb.JobStatus) -> "JobStatus":
        return cls(
            id=s.job_id,
            name=s.name,
            state=_STATES.get(s.state, "unknown"),
            phase=s.phase,
            maps_total=s.maps_total,
            maps_done=s.maps_done,
            reduces_total=s.reduces_total,
            reduces_done=s.reduces_done,
            error=s.error,
            output=s.output,
            owner=s.owner,
            counters=dict(s.counters),
        )


@dataclass(frozen=True)
class WorkerInfo:
    """A connected worker: where it is, its slots, and the handlers it serves (name → kind)."""

    id: int
    address: str
    slots: int
    running: int
    handlers: Dict[str, str]

    @classmethod
    def from_wire(cls, w: pb.WorkerInfo) -> "WorkerInfo":
        return cls(
            id=w.id,
            address=w.address,
            slots=w.slots,
            running=w.running,
            handlers={h.name: h.kind for h in w.handlers},
        )


def job_spec(
    inputs: Sequence[str],
    output: str,
    *,
    app: Optional[str] = None,
    pattern: str = "",
    args: Mapping[str, str] = {},
    mapper: Optional[str] = None,
    reducer: Optional[str] = None,
    combiner: Optional[str] = None,
    reduce_tasks: int = 1,
    name: str = "",
    split_size: int = 0,
    max_attempts: int = 0,
    task_timeout: int = 0,
    priority: int = 0,
    after: Sequence[str] = (),
    files: Sequence[Union[str, "os.PathLike[str]"]] = (),
    env: Mapping[str, str] = {},
    key_fields: int = 1,
    partition_fields: int = 0,
    task_memory: int = 0,
    recursive: bool = False,
    combine_splits: int = 0,
    output_compression: str = "",
) -> pb.JobSpec:
    """A job spec: a built-in ``app`` (wordcount, indexer, grep with ``pattern``, sort) with
    its ``args`` by name (``pattern=...`` is short for ``args={"pattern": ...}``), or streaming
    commands (``mapper``, and optionally ``reducer`` and ``combiner``).

    Streaming jobs also take ``files`` (local paths, read now and shipped with the job: each
    attempt finds them in its working directory), ``env`` (variables for the commands),
    ``key_fields`` and ``partition_fields`` (a secondary sort) and ``task_memory`` (bytes);
    ``recursive`` and ``combine_splits`` (bytes) say how inputs are listed, as the CLI's
    flags of the same names do; ``output_compression`` ("gzip" or "zstd") writes the parts
    compressed. ``inputs`` and ``output`` may be ``s3://bucket/prefix`` URLs."""
    if (app is None) == (mapper is None):
        raise ValueError("give either app= (a built-in app) or mapper= (a streaming command)")
    spec = pb.JobSpec(
        name=name,
        inputs=list(inputs),
        output=output,
        reduce_tasks=reduce_tasks,
        split_size=split_size,
        max_attempts=max_attempts,
        task_timeout_secs=task_timeout,
        priority=priority,
        after=list(after),
        files=[_shipped(path) for path in files],
        env=[pb.EnvVar(name=k, value=v) for k, v in env.items()],
        task_memory=task_memory,
        recursive=recursive,
        combine_splits=combine_splits,
        output_compression=output_compression,
    )
    if key_fields != 1 or partition_fields:
        spec.keys.fields = key_fields
        spec.keys.partition_fields = partition_fields
    if app is not None:
        spec.app.name = app
        spec.app.args.update(args)
        if pattern:
            spec.app.args["pattern"] = pattern
        # Coordinators from before apps took arguments read grep's pattern here.
        spec.app.pattern = spec.app.args.get("pattern", "")
    else:
        spec.streaming.mapper = mapper or ""
        spec.streaming.reducer = reducer or ""
        spec.streaming.combiner = combiner or ""
    return spec


def _shipped(path: Union[str, "os.PathLike[str]"]) -> pb.ShippedFile:
    """A local file to ship with a job, executable if it is here."""
    with open(path, "rb") as source:
        contents = source.read()
    return pb.ShippedFile(
        name=os.path.basename(os.fspath(path)),
        contents=contents,
        executable=os.access(path, os.X_OK),
    )
