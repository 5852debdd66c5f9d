// Runtime room: the engine entry points (shard loading, dispatch over Comm, pipeline, scheduler, selftest).
import Foundation
@_exported import Comm
