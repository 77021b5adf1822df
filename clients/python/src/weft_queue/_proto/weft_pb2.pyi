from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_WAITING: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]

class JobPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_PHASE_UNSPECIFIED: _ClassVar[JobPhase]
    JOB_PHASE_MAP: _ClassVar[JobPhase]
    JOB_PHASE_REDUCE: _ClassVar[JobPhase]
    JOB_PHASE_DONE: _ClassVar[JobPhase]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_WAITING: JobState
JOB_STATE_QUEUED: JobState
JOB_PHASE_UNSPECIFIED: JobPhase
JOB_PHASE_MAP: JobPhase
JOB_PHASE_REDUCE: JobPhase
JOB_PHASE_DONE: JobPhase

class JobSpec(_message.Message):
    __slots__ = ("name", "inputs", "output", "reduce_tasks", "app", "streaming", "split_size", "max_attempts", "task_timeout_secs", "priority", "after", "output_mode", "files", "env", "keys", "task_memory", "recursive", "combine_splits", "output_compression", "partitioner")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REDUCE_TASKS_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    STREAMING_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TASK_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TASK_MEMORY_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    COMBINE_SPLITS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    PARTITIONER_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    output: str
    reduce_tasks: int
    app: BuiltinApp
    streaming: StreamingCommands
    split_size: int
    max_attempts: int
    task_timeout_secs: int
    priority: int
    after: _containers.RepeatedScalarFieldContainer[str]
    output_mode: int
    files: _containers.RepeatedCompositeFieldContainer[ShippedFile]
    env: _containers.RepeatedCompositeFieldContainer[EnvVar]
    keys: KeyLayout
    task_memory: int
    recursive: bool
    combine_splits: int
    output_compression: str
    partitioner: str
    def __init__(self, name: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., output: _Optional[str] = ..., reduce_tasks: _Optional[int] = ..., app: _Optional[_Union[BuiltinApp, _Mapping]] = ..., streaming: _Optional[_Union[StreamingCommands, _Mapping]] = ..., split_size: _Optional[int] = ..., max_attempts: _Optional[int] = ..., task_timeout_secs: _Optional[int] = ..., priority: _Optional[int] = ..., after: _Optional[_Iterable[str]] = ..., output_mode: _Optional[int] = ..., files: _Optional[_Iterable[_Union[ShippedFile, _Mapping]]] = ..., env: _Optional[_Iterable[_Union[EnvVar, _Mapping]]] = ..., keys: _Optional[_Union[KeyLayout, _Mapping]] = ..., task_memory: _Optional[int] = ..., recursive: bool = ..., combine_splits: _Optional[int] = ..., output_compression: _Optional[str] = ..., partitioner: _Optional[str] = ...) -> None: ...

class ShippedFile(_message.Message):
    __slots__ = ("name", "contents", "executable")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    contents: bytes
    executable: bool
    def __init__(self, name: _Optional[str] = ..., contents: _Optional[bytes] = ..., executable: bool = ...) -> None: ...

class EnvVar(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class KeyLayout(_message.Message):
    __slots__ = ("fields", "partition_fields")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: int
    partition_fields: int
    def __init__(self, fields: _Optional[int] = ..., partition_fields: _Optional[int] = ...) -> None: ...

class BuiltinApp(_message.Message):
    __slots__ = ("name", "pattern", "args")
    class ArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    pattern: str
    args: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., pattern: _Optional[str] = ..., args: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StreamingCommands(_message.Message):
    __slots__ = ("mapper", "reducer", "combiner")
    MAPPER_FIELD_NUMBER: _ClassVar[int]
    REDUCER_FIELD_NUMBER: _ClassVar[int]
    COMBINER_FIELD_NUMBER: _ClassVar[int]
    mapper: str
    reducer: str
    combiner: str
    def __init__(self, mapper: _Optional[str] = ..., reducer: _Optional[str] = ..., combiner: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobRef(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class JobList(_message.Message):
    __slots__ = ("jobs", "state_counts")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    STATE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobStatus]
    state_counts: _containers.RepeatedCompositeFieldContainer[JobStateCount]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobStatus, _Mapping]]] = ..., state_counts: _Optional[_Iterable[_Union[JobStateCount, _Mapping]]] = ...) -> None: ...

class JobStateCount(_message.Message):
    __slots__ = ("state", "jobs")
    STATE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    jobs: int
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., jobs: _Optional[int] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("id", "address", "slots", "running", "heartbeat_age_ms", "joined_ms", "succeeded", "failed", "draining", "served_bytes", "left_ms", "left_because", "handlers")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    JOINED_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    SERVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    LEFT_MS_FIELD_NUMBER: _ClassVar[int]
    LEFT_BECAUSE_FIELD_NUMBER: _ClassVar[int]
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    id: int
    address: str
    slots: int
    running: int
    heartbeat_age_ms: int
    joined_ms: int
    succeeded: int
    failed: int
    draining: bool
    served_bytes: int
    left_ms: int
    left_because: str
    handlers: _containers.RepeatedCompositeFieldContainer[HandlerInfo]
    def __init__(self, id: _Optional[int] = ..., address: _Optional[str] = ..., slots: _Optional[int] = ..., running: _Optional[int] = ..., heartbeat_age_ms: _Optional[int] = ..., joined_ms: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., draining: bool = ..., served_bytes: _Optional[int] = ..., left_ms: _Optional[int] = ..., left_because: _Optional[str] = ..., handlers: _Optional[_Iterable[_Union[HandlerInfo, _Mapping]]] = ...) -> None: ...

class WorkerList(_message.Message):
    __slots__ = ("workers", "left")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    left: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ..., left: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ...) -> None: ...

class AttemptInfo(_message.Message):
    __slots__ = ("attempt_id", "kind", "task_index", "number", "worker", "outcome", "reason", "started_ms", "ended_ms")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_INDEX_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_MS_FIELD_NUMBER: _ClassVar[int]
    attempt_id: int
    kind: str
    task_index: int
    number: int
    worker: str
    outcome: str
    reason: str
    started_ms: int
    ended_ms: int
    def __init__(self, attempt_id: _Optional[int] = ..., kind: _Optional[str] = ..., task_index: _Optional[int] = ..., number: _Optional[int] = ..., worker: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., started_ms: _Optional[int] = ..., ended_ms: _Optional[int] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job_id", "name", "state", "phase", "maps_total", "maps_done", "reduces_total", "reduces_done", "failed_attempts", "error", "output", "priority", "after", "created_ms", "ended_ms", "counters", "attempts", "running_attempts", "job_phase", "owner", "whole_files")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MAPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MAPS_DONE_FIELD_NUMBER: _ClassVar[int]
    REDUCES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REDUCES_DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_MS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    JOB_PHASE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    WHOLE_FILES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    state: JobState
    phase: str
    maps_total: int
    maps_done: int
    reduces_total: int
    reduces_done: int
    failed_attempts: int
    error: str
    output: str
    priority: int
    after: _containers.RepeatedScalarFieldContainer[str]
    created_ms: int
    ended_ms: int
    counters: _containers.ScalarMap[str, int]
    attempts: _containers.RepeatedCompositeFieldContainer[AttemptInfo]
    running_attempts: int
    job_phase: JobPhase
    owner: str
    whole_files: int
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., phase: _Optional[str] = ..., maps_total: _Optional[int] = ..., maps_done: _Optional[int] = ..., reduces_total: _Optional[int] = ..., reduces_done: _Optional[int] = ..., failed_attempts: _Optional[int] = ..., error: _Optional[str] = ..., output: _Optional[str] = ..., priority: _Optional[int] = ..., after: _Optional[_Iterable[str]] = ..., created_ms: _Optional[int] = ..., ended_ms: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ..., attempts: _Optional[_Iterable[_Union[AttemptInfo, _Mapping]]] = ..., running_attempts: _Optional[int] = ..., job_phase: _Optional[_Union[JobPhase, str]] = ..., owner: _Optional[str] = ..., whole_files: _Optional[int] = ...) -> None: ...

class QueueTask(_message.Message):
    __slots__ = ("handler", "payload", "max_attempts", "timeout_ms", "id")
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    handler: str
    payload: bytes
    max_attempts: int
    timeout_ms: int
    id: str
    def __init__(self, handler: _Optional[str] = ..., payload: _Optional[bytes] = ..., max_attempts: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., id: _Optional[str] = ...) -> None: ...

class TaskBatch(_message.Message):
    __slots__ = ("tasks", "max_attempts", "task_timeout_ms", "unserved_timeout_ms", "idempotency_key", "padding")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TASK_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[QueueTask]
    max_attempts: int
    task_timeout_ms: int
    unserved_timeout_ms: int
    idempotency_key: str
    padding: bytes
    def __init__(self, tasks: _Optional[_Iterable[_Union[QueueTask, _Mapping]]] = ..., max_attempts: _Optional[int] = ..., task_timeout_ms: _Optional[int] = ..., unserved_timeout_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., padding: _Optional[bytes] = ...) -> None: ...

class QueueTaskResult(_message.Message):
    __slots__ = ("index", "output", "error", "position", "task_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    output: bytes
    error: str
    position: int
    task_id: str
    def __init__(self, index: _Optional[int] = ..., output: _Optional[bytes] = ..., error: _Optional[str] = ..., position: _Optional[int] = ..., task_id: _Optional[str] = ...) -> None: ...

class BatchRef(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class BatchInfo(_message.Message):
    __slots__ = ("batch_id", "owner", "state", "tasks", "results", "failed", "result_bytes", "created_ms", "ended_ms", "idempotency_key", "created")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    owner: str
    state: str
    tasks: int
    results: int
    failed: int
    result_bytes: int
    created_ms: int
    ended_ms: int
    idempotency_key: str
    created: bool
    def __init__(self, batch_id: _Optional[str] = ..., owner: _Optional[str] = ..., state: _Optional[str] = ..., tasks: _Optional[int] = ..., results: _Optional[int] = ..., failed: _Optional[int] = ..., result_bytes: _Optional[int] = ..., created_ms: _Optional[int] = ..., ended_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., created: bool = ...) -> None: ...

class BatchResultsRequest(_message.Message):
    __slots__ = ("batch_id", "follow", "task_id")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    follow: bool
    task_id: str
    def __init__(self, batch_id: _Optional[str] = ..., follow: bool = ..., task_id: _Optional[str] = ..., **kwargs) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class BatchList(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[BatchInfo]
    def __init__(self, batches: _Optional[_Iterable[_Union[BatchInfo, _Mapping]]] = ...) -> None: ...

class QueueTaskResults(_message.Message):
    __slots__ = ("results", "unserved_handlers", "served_handlers")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_HANDLERS_FIELD_NUMBER: _ClassVar[int]
    SERVED_HANDLERS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QueueTaskResult]
    unserved_handlers: _containers.RepeatedScalarFieldContainer[str]
    served_handlers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, results: _Optional[_Iterable[_Union[QueueTaskResult, _Mapping]]] = ..., unserved_handlers: _Optional[_Iterable[str]] = ..., served_handlers: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("register", "credit", "heartbeat", "reports", "drain")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    register: Register
    credit: int
    heartbeat: Heartbeat
    reports: Reports
    drain: Drain
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., credit: _Optional[int] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., reports: _Optional[_Union[Reports, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("shuffle_address", "slots", "hostname", "held", "reports_progress", "handlers", "carried", "version")
    SHUFFLE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    REPORTS_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    shuffle_address: str
    slots: int
    hostname: str
    held: _containers.RepeatedCompositeFieldContainer[HeldOutput]
    reports_progress: bool
    handlers: _containers.RepeatedCompositeFieldContainer[HandlerInfo]
    carried: _containers.RepeatedCompositeFieldContainer[CarriedAttempt]
    version: str
    def __init__(self, shuffle_address: _Optional[str] = ..., slots: _Optional[int] = ..., hostname: _Optional[str] = ..., held: _Optional[_Iterable[_Union[HeldOutput, _Mapping]]] = ..., reports_progress: bool = ..., handlers: _Optional[_Iterable[_Union[HandlerInfo, _Mapping]]] = ..., carried: _Optional[_Iterable[_Union[CarriedAttempt, _Mapping]]] = ..., version: _Optional[str] = ...) -> None: ...

class CarriedAttempt(_message.Message):
    __slots__ = ("job_id", "attempt", "kind", "index", "number")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    kind: str
    index: int
    number: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., kind: _Optional[str] = ..., index: _Optional[int] = ..., number: _Optional[int] = ...) -> None: ...

class HandlerInfo(_message.Message):
    __slots__ = ("name", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class HeldOutput(_message.Message):
    __slots__ = ("job_id", "map_attempt", "map_task")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MAP_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAP_TASK_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    map_attempt: int
    map_task: int
    def __init__(self, job_id: _Optional[str] = ..., map_attempt: _Optional[int] = ..., map_task: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("progressing", "served_bytes")
    PROGRESSING_FIELD_NUMBER: _ClassVar[int]
    SERVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    progressing: _containers.RepeatedScalarFieldContainer[int]
    served_bytes: int
    def __init__(self, progressing: _Optional[_Iterable[int]] = ..., served_bytes: _Optional[int] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Reports(_message.Message):
    __slots__ = ("reports", "credit")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[AttemptReport]
    credit: int
    def __init__(self, reports: _Optional[_Iterable[_Union[AttemptReport, _Mapping]]] = ..., credit: _Optional[int] = ...) -> None: ...

class AttemptReport(_message.Message):
    __slots__ = ("attempt_id", "counters", "map_done", "reduce_done", "queue_output", "failed", "fetch_failed", "handed_back", "timed_out")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    MAP_DONE_FIELD_NUMBER: _ClassVar[int]
    REDUCE_DONE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FETCH_FAILED_FIELD_NUMBER: _ClassVar[int]
    HANDED_BACK_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    attempt_id: int
    counters: _containers.ScalarMap[str, int]
    map_done: MapDone
    reduce_done: ReduceDone
    queue_output: bytes
    failed: str
    fetch_failed: FetchFailed
    handed_back: HandedBack
    timed_out: TimedOut
    def __init__(self, attempt_id: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ..., map_done: _Optional[_Union[MapDone, _Mapping]] = ..., reduce_done: _Optional[_Union[ReduceDone, _Mapping]] = ..., queue_output: _Optional[bytes] = ..., failed: _Optional[str] = ..., fetch_failed: _Optional[_Union[FetchFailed, _Mapping]] = ..., handed_back: _Optional[_Union[HandedBack, _Mapping]] = ..., timed_out: _Optional[_Union[TimedOut, _Mapping]] = ...) -> None: ...

class MapDone(_message.Message):
    __slots__ = ("output_file", "partition_bytes", "output_records")
    OUTPUT_FILE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_BYTES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_RECORDS_FIELD_NUMBER: _ClassVar[int]
    output_file: str
    partition_bytes: _containers.RepeatedScalarFieldContainer[int]
    output_records: int
    def __init__(self, output_file: _Optional[str] = ..., partition_bytes: _Optional[_Iterable[int]] = ..., output_records: _Optional[int] = ...) -> None: ...

class ReduceDone(_message.Message):
    __slots__ = ("output_file", "output_records", "upload_tags")
    OUTPUT_FILE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_RECORDS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_TAGS_FIELD_NUMBER: _ClassVar[int]
    output_file: str
    output_records: int
    upload_tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, output_file: _Optional[str] = ..., output_records: _Optional[int] = ..., upload_tags: _Optional[_Iterable[str]] = ...) -> None: ...

class FetchFailed(_message.Message):
    __slots__ = ("map_attempts", "reason")
    MAP_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    map_attempts: _containers.RepeatedScalarFieldContainer[int]
    reason: str
    def __init__(self, map_attempts: _Optional[_Iterable[int]] = ..., reason: _Optional[str] = ...) -> None: ...

class HandedBack(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TimedOut(_message.Message):
    __slots__ = ("after_ms",)
    AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    after_ms: int
    def __init__(self, after_ms: _Optional[int] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("welcome", "assignments", "cancel", "forget")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    FORGET_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assignments: Assignments
    cancel: AttemptIds
    forget: JobIds
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assignments: _Optional[_Union[Assignments, _Mapping]] = ..., cancel: _Optional[_Union[AttemptIds, _Mapping]] = ..., forget: _Optional[_Union[JobIds, _Mapping]] = ...) -> None: ...

class JobIds(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: int
    heartbeat_interval_ms: int
    def __init__(self, worker_id: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class AttemptIds(_message.Message):
    __slots__ = ("attempt_ids",)
    ATTEMPT_IDS_FIELD_NUMBER: _ClassVar[int]
    attempt_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, attempt_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class Assignments(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("attempt_id", "job_id", "task_index", "attempt_number", "map", "reduce", "queue", "timeout_ms")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    REDUCE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    attempt_id: int
    job_id: str
    task_index: int
    attempt_number: int
    map: MapWork
    reduce: ReduceWork
    queue: QueueTask
    timeout_ms: int
    def __init__(self, attempt_id: _Optional[int] = ..., job_id: _Optional[str] = ..., task_index: _Optional[int] = ..., attempt_number: _Optional[int] = ..., map: _Optional[_Union[MapWork, _Mapping]] = ..., reduce: _Optional[_Union[ReduceWork, _Mapping]] = ..., queue: _Optional[_Union[QueueTask, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class Program(_message.Message):
    __slots__ = ("app", "streaming", "split_points", "task_timeout_secs", "output_mode", "data_roots", "env", "keys", "task_memory", "files", "output_compression")
    APP_FIELD_NUMBER: _ClassVar[int]
    STREAMING_FIELD_NUMBER: _ClassVar[int]
    SPLIT_POINTS_FIELD_NUMBER: _ClassVar[int]
    TASK_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODE_FIELD_NUMBER: _ClassVar[int]
    DATA_ROOTS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TASK_MEMORY_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    app: BuiltinApp
    streaming: StreamingCommands
    split_points: _containers.RepeatedScalarFieldContainer[bytes]
    task_timeout_secs: int
    output_mode: int
    data_roots: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.RepeatedCompositeFieldContainer[EnvVar]
    keys: KeyLayout
    task_memory: int
    files: _containers.RepeatedScalarFieldContainer[str]
    output_compression: str
    def __init__(self, app: _Optional[_Union[BuiltinApp, _Mapping]] = ..., streaming: _Optional[_Union[StreamingCommands, _Mapping]] = ..., split_points: _Optional[_Iterable[bytes]] = ..., task_timeout_secs: _Optional[int] = ..., output_mode: _Optional[int] = ..., data_roots: _Optional[_Iterable[str]] = ..., env: _Optional[_Iterable[_Union[EnvVar, _Mapping]]] = ..., keys: _Optional[_Union[KeyLayout, _Mapping]] = ..., task_memory: _Optional[int] = ..., files: _Optional[_Iterable[str]] = ..., output_compression: _Optional[str] = ...) -> None: ...

class ShippedFiles(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[ShippedFile]
    def __init__(self, files: _Optional[_Iterable[_Union[ShippedFile, _Mapping]]] = ...) -> None: ...

class MapWork(_message.Message):
    __slots__ = ("program", "file", "start", "length", "reduce_tasks", "output_file", "file_bytes", "more", "upload_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    REDUCE_TASKS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FILE_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    program: Program
    file: str
    start: int
    length: int
    reduce_tasks: int
    output_file: str
    file_bytes: bytes
    more: _containers.RepeatedCompositeFieldContainer[FilePiece]
    upload_id: str
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ..., file: _Optional[str] = ..., start: _Optional[int] = ..., length: _Optional[int] = ..., reduce_tasks: _Optional[int] = ..., output_file: _Optional[str] = ..., file_bytes: _Optional[bytes] = ..., more: _Optional[_Iterable[_Union[FilePiece, _Mapping]]] = ..., upload_id: _Optional[str] = ...) -> None: ...

class FilePiece(_message.Message):
    __slots__ = ("file", "file_bytes", "start", "length")
    FILE_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    file: str
    file_bytes: bytes
    start: int
    length: int
    def __init__(self, file: _Optional[str] = ..., file_bytes: _Optional[bytes] = ..., start: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class MapLocation(_message.Message):
    __slots__ = ("map_task", "map_attempt", "shuffle_address")
    MAP_TASK_FIELD_NUMBER: _ClassVar[int]
    MAP_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    map_task: int
    map_attempt: int
    shuffle_address: str
    def __init__(self, map_task: _Optional[int] = ..., map_attempt: _Optional[int] = ..., shuffle_address: _Optional[str] = ...) -> None: ...

class ReduceWork(_message.Message):
    __slots__ = ("program", "partition", "maps", "output_file", "upload_id")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FILE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    program: Program
    partition: int
    maps: _containers.RepeatedCompositeFieldContainer[MapLocation]
    output_file: str
    upload_id: str
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ..., partition: _Optional[int] = ..., maps: _Optional[_Iterable[_Union[MapLocation, _Mapping]]] = ..., output_file: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("job_id", "map_attempt", "partition")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MAP_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    map_attempt: int
    partition: int
    def __init__(self, job_id: _Optional[str] = ..., map_attempt: _Optional[int] = ..., partition: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class LogRequest(_message.Message):
    __slots__ = ("task_id", "attempt_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt_id: int
    def __init__(self, task_id: _Optional[str] = ..., attempt_id: _Optional[int] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("job_id", "task", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task: str
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., task: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class AttemptLogChunk(_message.Message):
    __slots__ = ("attempt_id", "task_id", "number", "worker", "data", "error")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    attempt_id: int
    task_id: str
    number: int
    worker: str
    data: bytes
    error: str
    def __init__(self, attempt_id: _Optional[int] = ..., task_id: _Optional[str] = ..., number: _Optional[int] = ..., worker: _Optional[str] = ..., data: _Optional[bytes] = ..., error: _Optional[str] = ...) -> None: ...

class LeaderRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaderInfo(_message.Message):
    __slots__ = ("leading", "leader", "epoch", "dashboard")
    LEADING_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    DASHBOARD_FIELD_NUMBER: _ClassVar[int]
    leading: bool
    leader: str
    epoch: int
    dashboard: str
    def __init__(self, leading: bool = ..., leader: _Optional[str] = ..., epoch: _Optional[int] = ..., dashboard: _Optional[str] = ...) -> None: ...
