// What a forward pass reports while it runs: phase spans for the tracer, routing decisions and layer outputs for
// observers (expert load, fixtures). Shared by every family.
import Kernels

/// Timed phases of the forward pass (the engine's tracer maps them onto its trace phases).
public enum ForwardPhase: String, Sendable, CaseIterable {
    case attention, denseFFN, router, expertFFN, sharedExpert
}

/// Times phases of the forward pass; `begin` returns a start stamp that `end` closes.
public protocol PhaseObserver: AnyObject {
    func begin() -> UInt64
    func end(_ start: UInt64, _ phase: ForwardPhase, layer: Int)
}

/// What the forward pass reports while it runs (tests, fixture comparisons, tracing).
public enum ForwardEvent {
    /// Hidden state `[T, D]` after decoder layer `layer`.
    case layerOutput(layer: Int, hidden: Matrix)
    /// Router decision of an MoE layer.
    case routing(layer: Int, Routing)
}
