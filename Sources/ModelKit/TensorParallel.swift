// TensorParallelGroup: the ranks of one lane that split a layer's dense work (tensor parallelism). Every product is
// split by its output features, so each output value is computed whole on one rank in the single-device order, and
// the group all-gathers where the next step needs every value: the output is bitwise the one-rank output. The blocks
// write each gather at its call site; `SingleRank` makes them the identity (tp = 1 costs nothing).
import Kernels
import Tensors

public protocol TensorParallelGroup: Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// `[T, w_r]` on each rank -> `[T, columns]`, the ranks' blocks side by side in rank order, where rank r holds
    /// units `share(of: columns / unit)` of `unit` columns each (heads of `unit` values, or single columns).
    func gatherColumns(_ part: Matrix, columns: Int, unit: Int) throws -> Matrix
    /// `[n_r, C]` on each rank, rank r holding rows `share(of: rows)` -> `[rows, C]`.
    func gatherRows(_ part: Matrix, rows: Int) throws -> Matrix
}

extension TensorParallelGroup {
    /// This rank's share of `count` things split `size` ways (the first `count % size` ranks take one more).
    public func share(of count: Int) -> Range<Int> { TensorSplit.block(count: count, parts: size, index: rank) }

    public func gatherColumns(_ part: Matrix, columns: Int) throws -> Matrix { try gatherColumns(part, columns: columns, unit: 1) }
}

/// One rank holds everything: every gather is the identity.
public struct SingleRank: TensorParallelGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func gatherColumns(_ part: Matrix, columns: Int, unit: Int) throws -> Matrix { part }
    public func gatherRows(_ part: Matrix, rows: Int) throws -> Matrix { part }
}

/// The split rule shared by the planner and the blocks: contiguous blocks, sizes differing by at most one.
public enum TensorSplit {
    public static func block(count: Int, parts: Int, index: Int) -> Range<Int> {
        precondition(parts >= 1 && index >= 0 && index < parts, "block \(index) of \(parts)")
        let base = count / parts, remainder = count % parts
        let start = index * base + min(index, remainder)
        return start..<(start + base + (index < remainder ? 1 : 0))
    }

    public static func blocks(count: Int, parts: Int) -> [Range<Int>] { (0..<parts).map { block(count: count, parts: parts, index: $0) } }
}
