// Tracer: timed spans keyed by (rank, stage, layer, phase) with bytes moved. Off by default: a disabled
// tracer costs one branch per span. Spans are merged on rank 0 into a Chrome trace (ChromeTrace.swift).
import Foundation
import Models

/// What a span measures. Communication phases carry byte counts.
public enum TracePhase: String, Sendable, Codable, CaseIterable {
    case loading
    case embedding
    case attention
    case denseFFN = "dense_ffn"
    case router
    case dispatch
    /// Routed experts; in decode-sized steps with several threads also the shared expert, whose products the workers
    /// run during the router and dispatch spans (those sit between this phase's spans).
    case expertFFN = "expert_ffn"
    case combine
    /// The shared expert where it runs on its own (prefill, or one thread).
    case sharedExpert = "shared_expert"
    case head
    case sampling
    case stepBroadcast = "step_broadcast"
    case pipelineSend = "pipeline_send"
    case pipelineRecv = "pipeline_recv"
    case pipelineWait = "pipeline_wait"
    case tokensReturn = "tokens_return"
    /// All-gathers inside a lane's tensor-parallel group (heads' outputs, hidden outputs, FFN columns, logits).
    case tpGather = "tp_gather"

    /// Phases that move bytes between ranks.
    public var isCommunication: Bool {
        switch self {
        case .dispatch, .combine, .stepBroadcast, .pipelineSend, .pipelineRecv, .pipelineWait, .tokensReturn, .tpGather: return true
        default: return false
        }
    }

    var code: Int { TracePhase.allCases.firstIndex(of: self)! }
}

/// One timed interval on one rank. Times are nanoseconds of the rank's monotonic clock.
public struct TraceSpan: Sendable, Codable, Equatable {
    public var rank: Int
    public var stage: Int
    /// Decoder layer, or -1 when the span is not tied to a layer.
    public var layer: Int
    public var phase: TracePhase
    public var start: UInt64
    public var duration: UInt64
    public var bytes: Int
}

/// Collects spans for one rank. Not thread-safe: spans are recorded by the rank's main thread.
public final class Tracer: @unchecked Sendable {
    public var isEnabled: Bool
    public let rank: Int
    public var stage: Int
    public internal(set) var spans: [TraceSpan] = []

    public init(enabled: Bool, rank: Int, stage: Int = 0) {
        self.isEnabled = enabled
        self.rank = rank
        self.stage = stage
        if enabled { spans.reserveCapacity(1 << 16) }
    }

    /// A tracer that records nothing.
    public static func disabled(rank: Int = 0) -> Tracer { Tracer(enabled: false, rank: rank) }

    @inlinable public static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Start time for a span (0 when disabled, so the clock is not even read).
    @inline(__always) public func begin() -> UInt64 { isEnabled ? Tracer.now : 0 }

    /// Close a span started with `begin()`.
    @inline(__always) public func end(_ start: UInt64, _ phase: TracePhase, layer: Int = -1, bytes: Int = 0) {
        guard isEnabled else { return }
        spans.append(TraceSpan(rank: rank, stage: stage, layer: layer, phase: phase,
                               start: start, duration: Tracer.now &- start, bytes: bytes))
    }

    /// Time `body` as one span.
    @inline(__always)
    public func measure<T>(_ phase: TracePhase, layer: Int = -1, bytes: Int = 0, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        let start = Tracer.now
        defer { end(start, phase, layer: layer, bytes: bytes) }
        return try body()
    }

    /// Record an already-measured span (e.g. bytes known only after the call).
    public func record(_ phase: TracePhase, layer: Int = -1, start: UInt64, end: UInt64, bytes: Int = 0) {
        guard isEnabled else { return }
        spans.append(TraceSpan(rank: rank, stage: stage, layer: layer, phase: phase, start: start, duration: end &- start, bytes: bytes))
    }
}

extension Tracer: PhaseObserver {
    public func end(_ start: UInt64, _ phase: ForwardPhase, layer: Int) {
        let traced: TracePhase
        switch phase {
        case .attention: traced = .attention
        case .denseFFN: traced = .denseFFN
        case .router: traced = .router
        case .expertFFN: traced = .expertFFN
        case .sharedExpert: traced = .sharedExpert
        }
        end(start, traced, layer: layer)
    }

    /// Drop recorded spans (between benchmark measurements).
    public func clear() { spans.removeAll(keepingCapacity: true) }
}
