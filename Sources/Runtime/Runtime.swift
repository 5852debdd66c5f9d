// Runtime room: the engine entry points (shard loading, dispatch over Comm, pipeline, scheduler, selftest).
@_exported import Comm
