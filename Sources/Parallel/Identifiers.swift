// Small wrapper types that keep ranks, layers, logical experts and physical expert slots apart.

/// A rank in the world communicator.
public struct Rank: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: Rank, b: Rank) -> Bool { a.value < b.value }
    public var description: String { "rank \(value)" }
}

/// A main-model decoder layer index (0 ..< num_hidden_layers).
public struct LayerIndex: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: LayerIndex, b: LayerIndex) -> Bool { a.value < b.value }
    public var description: String { "layer \(value)" }
}

/// A logical routed-expert id as the router sees it (0 ..< n_routed_experts).
public struct ExpertID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: ExpertID, b: ExpertID) -> Bool { a.value < b.value }
    public var description: String { "expert \(value)" }
}

/// Where one copy of an expert lives: the expert-parallel rank within the stage and the local slot there.
/// Separate from `ExpertID` so that redundant copies (several slots per logical expert) can be added.
public struct PhysicalSlot: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Index of the rank within the stage's expert-parallel group (0 ..< ep).
    public let lane: Int
    /// Position among that rank's local experts.
    public let local: Int
    public init(lane: Int, local: Int) {
        self.lane = lane
        self.local = local
    }
    public var description: String { "lane \(lane) slot \(local)" }
}
