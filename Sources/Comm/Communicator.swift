// Communicator: the transport contract (point-to-point and collectives on raw bit-copyable bytes),
// implemented over MPI (MPICommunicator) and over threads in one process (LocalCommunicator).
// Every blocking call runs under the rank's Watchdog.

/// Reduction operator for `allReduce`.
public enum ReduceOp: String, Sendable, CaseIterable {
    case sum, max, min
}

/// Element types `allReduce` understands.
public enum ReduceElement: String, Sendable, CaseIterable {
    case float, double, int32, int64

    public var byteWidth: Int {
        switch self {
        case .float, .int32: return 4
        case .double, .int64: return 8
        }
    }
}

/// A group of ranks that can exchange bytes. Counts and displacements are in BYTES; all buffers are
/// contiguous; `allGatherV` / `allToAllV` place blocks back to back in rank order.
public protocol Communicator: AnyObject, Sendable {
    /// This rank's index in the group.
    var rank: Int { get }
    /// Number of ranks in the group.
    var size: Int { get }
    /// Rank in the world communicator (for messages a user reads).
    var worldRank: Int { get }
    /// Human-readable name ("world", "world/split#1(color 0)").
    var name: String { get }
    /// The watchdog bounding this rank's waits (shared with communicators split from this one).
    var watchdog: Watchdog { get }

    /// Collective: partition by `color` (ranks with the same color form a group, ordered by `key`, ties by
    /// old rank). A negative color returns nil (the rank joins no group) but still takes part in the call.
    func split(color: Int, key: Int) throws -> (any Communicator)?
    func barrier() throws
    /// Collective: `buffer` of `root` is copied into `buffer` of every rank (same byte count everywhere).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    func send(_ buffer: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws
    /// Blocking receive of exactly `buffer.count` bytes.
    func recv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws
    func sendRecv(send: UnsafeRawBufferPointer, to destination: Int,
                  recv: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws
    /// Start a send and return at once; the bytes are copied, so the caller may reuse its buffer.
    /// Complete it with `wait()` (pipelines post sends this way so stages never block on each other).
    func sendAsync(_ buffer: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws -> any PendingSend
    /// Collective, in place: `buffer` holds `count` elements of `element` on every rank.
    func allReduce(_ buffer: UnsafeMutableRawBufferPointer, element: ReduceElement, op: ReduceOp) throws
    /// Collective: every rank contributes `send.count` bytes (equal on all ranks); `recv` = size * that.
    func allGather(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer) throws
    /// Collective: rank r contributes `recvCounts[r]` bytes; `recv` holds them back to back.
    func allGatherV(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer, recvCounts: [Int]) throws
    /// Collective: `send` holds `size` equal blocks (block r goes to rank r); `recv` the same layout by source.
    func allToAll(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer) throws
    /// Collective: block r of `send` (`sendCounts[r]` bytes) goes to rank r; block s of `recv`
    /// (`recvCounts[s]` bytes) comes from rank s. Zero counts are allowed.
    func allToAllV(send: UnsafeRawBufferPointer, sendCounts: [Int],
                   recv: UnsafeMutableRawBufferPointer, recvCounts: [Int]) throws
}

/// A send in flight, owning a copy of its bytes.
public protocol PendingSend: AnyObject {
    /// Block (under the watchdog) until the send completed.
    func wait() throws
}

/// Types that `allReduce` accepts.
public protocol Reducible: BitwiseCopyable {
    static var reduceElement: ReduceElement { get }
}
extension Float: Reducible { public static var reduceElement: ReduceElement { .float } }
extension Double: Reducible { public static var reduceElement: ReduceElement { .double } }
extension Int32: Reducible { public static var reduceElement: ReduceElement { .int32 } }
extension Int64: Reducible { public static var reduceElement: ReduceElement { .int64 } }

// MARK: typed conveniences over the raw contract

extension Communicator {
    /// Set the label the watchdog prints if this rank gets stuck (e.g. "step 4 layer 17").
    public func setContext(_ label: String) { watchdog.context = label }

    public func allReduce<T: Reducible>(_ values: inout [T], op: ReduceOp) throws {
        try values.withUnsafeMutableBytes { try allReduce($0, element: T.reduceElement, op: op) }
    }

    public func allReduce<T: Reducible>(_ value: T, op: ReduceOp) throws -> T {
        var values = [value]
        try allReduce(&values, op: op)
        return values[0]
    }

    public func broadcast<T: BitwiseCopyable>(_ values: inout [T], root: Int) throws {
        try values.withUnsafeMutableBytes { try broadcast($0, root: root) }
    }

    public func allGather<T: BitwiseCopyable>(_ values: [T]) throws -> [T] {
        var out = [T](unsafeUninitializedCapacity: values.count * size) { _, n in n = values.count * size }
        try values.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try allGather(send: s, recv: $0) } }
        return out
    }

    /// Gather variable-length arrays: returns one array per rank.
    public func allGatherV<T: BitwiseCopyable>(_ values: [T]) throws -> [[T]] {
        let counts = try allGather([Int64(values.count)]).map { Int($0) }
        let stride = MemoryLayout<T>.stride
        var flat = [T](unsafeUninitializedCapacity: counts.reduce(0, +)) { _, n in n = counts.reduce(0, +) }
        try values.withUnsafeBytes { s in
            try flat.withUnsafeMutableBytes { try allGatherV(send: s, recv: $0, recvCounts: counts.map { $0 * stride }) }
        }
        return split(flat, counts: counts)
    }

    /// Exchange one array per peer: `blocks[r]` goes to rank r; returns what each rank sent here.
    /// Sends the counts first (allToAll), then the payload (allToAllV).
    public func exchange<T: BitwiseCopyable>(_ blocks: [[T]]) throws -> [[T]] {
        precondition(blocks.count == size, "exchange needs one block per rank")
        let sendCounts = blocks.map { Int64($0.count) }
        var recvCounts64 = [Int64](repeating: 0, count: size)
        try sendCounts.withUnsafeBytes { s in try recvCounts64.withUnsafeMutableBytes { try allToAll(send: s, recv: $0) } }
        let recvCounts = recvCounts64.map { Int($0) }
        let stride = MemoryLayout<T>.stride
        let flatSend = blocks.flatMap { $0 }
        var flatRecv = [T](unsafeUninitializedCapacity: recvCounts.reduce(0, +)) { _, n in n = recvCounts.reduce(0, +) }
        try flatSend.withUnsafeBytes { s in
            try flatRecv.withUnsafeMutableBytes {
                try allToAllV(send: s, sendCounts: blocks.map { $0.count * stride }, recv: $0,
                              recvCounts: recvCounts.map { $0 * stride })
            }
        }
        return split(flatRecv, counts: recvCounts)
    }

    public func send<T: BitwiseCopyable>(_ values: [T], to destination: Int, tag: Int) throws {
        try values.withUnsafeBytes { try send($0, to: destination, tag: tag) }
    }

    public func sendAsync<T: BitwiseCopyable>(_ values: [T], to destination: Int, tag: Int) throws -> any PendingSend {
        try values.withUnsafeBytes { try sendAsync($0, to: destination, tag: tag) }
    }

    public func recv<T: BitwiseCopyable>(count: Int, of type: T.Type = T.self, from source: Int, tag: Int) throws -> [T] {
        var out = [T](unsafeUninitializedCapacity: count) { _, n in n = count }
        try out.withUnsafeMutableBytes { try recv($0, from: source, tag: tag) }
        return out
    }

    private func split<T>(_ flat: [T], counts: [Int]) -> [[T]] {
        var result: [[T]] = []
        result.reserveCapacity(counts.count)
        var offset = 0
        for c in counts {
            result.append(Array(flat[offset..<(offset + c)]))
            offset += c
        }
        return result
    }
}

/// Validate per-rank byte counts against a buffer (shared by both implementations).
func checkCounts(_ counts: [Int], size: Int, bufferBytes: Int, what: String, call: String, rank: Int) throws {
    guard counts.count == size else {
        throw CommError(.invalidArgument, call: call, message: "\(what) has \(counts.count) entries for \(size) ranks", rank: rank)
    }
    guard counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) <= bufferBytes else {
        throw CommError(.invalidArgument, call: call,
                        message: "\(what) \(counts) (sum \(counts.reduce(0, +))) do not fit a buffer of \(bufferBytes) bytes", rank: rank)
    }
}

/// Byte offsets of back-to-back blocks.
func displacements(_ counts: [Int]) -> [Int] {
    var result = [Int](repeating: 0, count: counts.count)
    var offset = 0
    for i in counts.indices {
        result[i] = offset
        offset += counts[i]
    }
    return result
}
