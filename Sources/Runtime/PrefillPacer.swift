// PrefillPacer: `serve --prefill-chunk auto`. Picks the prompt tokens a tick may carry beside running decodes from
// measured tick times, so that a tick with a prompt chunk lasts about `ratio` times a decode-only tick (the
// streams' inter-token latency stays even), while a backlog of waiting prompt tokens raises the budget so that
// prompts cannot pile up without bound. Which tokens go in which tick never changes a result (chunked prefill is
// bitwise equal to whole prefill), so timing-driven choices keep every output deterministic.

public struct PrefillPacer: Sendable, Equatable {
    /// Target duration of a tick carrying a prompt chunk, in decode-only ticks.
    public let ratio: Double
    public let minimum: Int
    public let maximum: Int
    /// Smoothed seconds of a tick that only decodes, and of each prompt token added to a tick.
    public private(set) var decodeTick: Double?
    public private(set) var perToken: Double?
    /// Ticks a backlog of waiting prompt tokens may take to drain, at the least.
    public static let backlogTicks = 256
    /// Budget before anything was measured.
    public static let initial = 16

    public init(ratio: Double = 2, minimum: Int = 2, maximum: Int = 256) {
        precondition(ratio > 1 && minimum >= 2 && maximum >= minimum)
        self.ratio = ratio
        self.minimum = minimum
        self.maximum = maximum
    }

    /// One finished tick: how long the engine worked on it and what it carried.
    public mutating func observe(seconds: Double, promptTokens: Int, decodeRows: Int) {
        guard seconds.isFinite, seconds > 0 else { return }
        // Exponential averages: recent ticks count most (the load and the machine change), one outlier does not.
        func smooth(_ old: Double?, _ new: Double) -> Double { old.map { 0.8 * $0 + 0.2 * new } ?? new }
        if promptTokens == 0 && decodeRows > 0 {
            decodeTick = smooth(decodeTick, seconds)
        } else if promptTokens >= 2, let d = decodeTick {
            perToken = smooth(perToken, max(seconds - d, d * 0.01) / Double(promptTokens))
        }
    }

    /// Prompt tokens the next tick may carry beside running decodes, with `backlog` prompt tokens waiting.
    public func budget(backlog: Int) -> Int {
        var tokens = Self.initial
        if let d = decodeTick, let c = perToken { tokens = Int(min((ratio - 1) * d / c, Double(maximum))) }
        tokens = max(tokens, (backlog + Self.backlogTicks - 1) / Self.backlogTicks)
        return min(max(tokens, minimum), maximum)
    }
}
