// Runtime room: the engine entry points (shard loading, dispatch over Comm, pipeline, scheduler, selftest).
import Checkpoint
import Foundation
@_exported import Comm

/// Resident set size of this process in bytes (VmRSS; 0 where /proc is unavailable).
public func residentMemoryBytes() -> Int { ProcessMemory.residentBytes() ?? 0 }
/// This node's MemAvailable in bytes (0 where unknown).
public func availableMemoryBytes() -> Int { ProcessMemory.availableBytes() ?? 0 }
