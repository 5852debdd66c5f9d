// LocalCommunicator: N ranks as threads in one process with the same contract as MPICommunicator
// (same ordering, same byte-count checks, same watchdog). Collectives are built from tagged messages
// in a shared mailbox, so a rank that skips a collective makes its peers time out exactly as under MPI.
import Foundation

/// The shared mailbox of one in-process world.
final class LocalHub: @unchecked Sendable {
    struct Key: Hashable {
        let communicator: String
        let source: Int
        let destination: Int
        let tag: Int
        let collective: Bool
    }

    private let lock = NSLock()
    private var queues: [Key: [[UInt8]]] = [:]

    func post(_ key: Key, _ bytes: [UInt8]) {
        lock.withLock { queues[key, default: []].append(bytes) }
    }

    func take(_ key: Key) -> [UInt8]? {
        lock.withLock {
            guard var queue = queues[key], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            queues[key] = queue.isEmpty ? nil : queue
            return first
        }
    }
}

/// One rank's view of an in-process group.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let worldRank: Int
    public let name: String
    public let watchdog: Watchdog
    private let hub: LocalHub
    /// World ranks of the members, indexed by group rank.
    private let members: [Int]
    private var collectiveSequence = 0
    private var splitCount = 0

    init(hub: LocalHub, name: String, members: [Int], rank: Int, watchdog: Watchdog) {
        self.hub = hub
        self.name = name
        self.members = members
        self.rank = rank
        self.size = members.count
        self.worldRank = members[rank]
        self.watchdog = watchdog
    }

    /// Run `body` on `ranks` threads, each with its rank's world communicator, and return the results by rank.
    /// A rank that throws makes `run` rethrow the first error (after every thread finished).
    public static func run<T: Sendable>(ranks: Int, timeout: Double = 5,
                                        _ body: @escaping @Sendable (LocalCommunicator) throws -> T) throws -> [T] {
        precondition(ranks >= 1, "need at least one rank")
        let hub = LocalHub()
        let members = Array(0..<ranks)
        let results = ResultBox<T>(count: ranks)
        let group = DispatchGroup()
        for r in 0..<ranks {
            group.enter()
            let thread = Thread {
                let comm = LocalCommunicator(hub: hub, name: "world", members: members, rank: r,
                                             watchdog: Watchdog(timeout: timeout, action: .throwError))
                results.set(r, Result { try body(comm) })
                group.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        return try results.values().map { try $0.get() }
    }

    // MARK: messaging primitives

    private func post(to destination: Int, tag: Int, collective: Bool, _ bytes: UnsafeRawBufferPointer) {
        hub.post(.init(communicator: name, source: rank, destination: destination, tag: tag, collective: collective), Array(bytes))
    }

    private func take(from source: Int, tag: Int, collective: Bool, operation: String, sequence: Int) throws -> [UInt8] {
        let key = LocalHub.Key(communicator: name, source: source, destination: rank, tag: tag, collective: collective)
        var message: [UInt8]?
        try watchdog.wait(rank: rank, worldRank: worldRank, communicator: name, operation: operation, sequence: sequence) {
            message = hub.take(key)
            return message != nil
        }
        return message!
    }

    /// Start a collective: returns its tag (per-communicator sequence) and the watchdog sequence.
    private func beginCollective() -> (tag: Int, sequence: Int) {
        collectiveSequence += 1
        return (collectiveSequence, watchdog.nextSequence())
    }

    private func checkRank(_ r: Int, _ call: String) throws {
        guard r >= 0 && r < size else {
            throw CommError(.invalidArgument, call: call, message: "rank \(r) outside 0..<\(size) of \(name)", rank: worldRank)
        }
    }

    /// Every rank sends `blocks[r]` to rank r and receives one block from each rank, in rank order.
    private func exchangeBlocks(_ blocks: [UnsafeRawBufferPointer], operation: String) throws -> [[UInt8]] {
        let (tag, sequence) = beginCollective()
        for r in 0..<size { post(to: r, tag: tag, collective: true, blocks[r]) }
        return try (0..<size).map { try take(from: $0, tag: tag, collective: true, operation: operation, sequence: sequence) }
    }

    private func copy(_ bytes: [UInt8], into buffer: UnsafeMutableRawBufferPointer, at offset: Int, expected: Int, _ call: String) throws {
        guard bytes.count == expected else {
            throw CommError(.invalidArgument, call: call, message: "expected \(expected) bytes, received \(bytes.count)", rank: worldRank)
        }
        if expected > 0 { bytes.withUnsafeBytes { buffer.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: expected) } }
    }

    // MARK: Communicator

    public func split(color: Int, key: Int) throws -> (any Communicator)? {
        var mine = [Int64(color), Int64(key)]
        let all: [[Int64]] = try mine.withUnsafeMutableBytes { raw in
            try exchangeBlocks(Array(repeating: UnsafeRawBufferPointer(raw), count: size), operation: "split")
        }.map { bytes in bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) } }
        mine = all[rank]
        splitCount += 1
        guard color >= 0 else { return nil }
        let group = (0..<size).filter { all[$0][0] == Int64(color) }
            .sorted { (all[$0][1], $0) < (all[$1][1], $1) }
        let newRank = group.firstIndex(of: rank)!
        return LocalCommunicator(hub: hub, name: "\(name)/split#\(splitCount)(color \(color))",
                                 members: group.map { members[$0] }, rank: newRank, watchdog: watchdog)
    }

    public func barrier() throws {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        _ = try exchangeBlocks(Array(repeating: empty, count: size), operation: "barrier")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try checkRank(root, "broadcast")
        let (tag, sequence) = beginCollective()
        if rank == root {
            for r in 0..<size where r != root { post(to: r, tag: tag, collective: true, UnsafeRawBufferPointer(buffer)) }
        } else {
            let bytes = try take(from: root, tag: tag, collective: true, operation: "broadcast(root \(root))", sequence: sequence)
            try copy(bytes, into: buffer, at: 0, expected: buffer.count, "broadcast")
        }
    }

    public func send(_ buffer: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws {
        try checkRank(destination, "send")
        post(to: destination, tag: tag, collective: false, buffer)
    }

    public func sendAsync(_ buffer: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws -> any PendingSend {
        try send(buffer, to: destination, tag: tag)
        return CompletedSend()
    }

    public func recv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws {
        try checkRank(source, "recv")
        let operation = "recv(from \(source), tag \(tag))"
        let bytes = try take(from: source, tag: tag, collective: false, operation: operation, sequence: watchdog.nextSequence())
        try copy(bytes, into: buffer, at: 0, expected: buffer.count, operation)
    }

    public func sendRecv(send: UnsafeRawBufferPointer, to destination: Int,
                         recv: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws {
        try self.send(send, to: destination, tag: tag)
        try self.recv(recv, from: source, tag: tag)
    }

    public func allReduce(_ buffer: UnsafeMutableRawBufferPointer, element: ReduceElement, op: ReduceOp) throws {
        guard buffer.count % element.byteWidth == 0 else {
            throw CommError(.invalidArgument, call: "allReduce", message: "\(buffer.count) bytes is not a whole number of \(element)", rank: worldRank)
        }
        let contributions = try exchangeBlocks(Array(repeating: UnsafeRawBufferPointer(buffer), count: size),
                                               operation: "allReduce(\(op.rawValue), \(element.rawValue))")
        // Reduce in rank order on every rank so all ranks hold identical results.
        switch element {
        case .float: reduce(contributions, into: buffer, as: Float.self, op: op)
        case .double: reduce(contributions, into: buffer, as: Double.self, op: op)
        case .int32: reduce(contributions, into: buffer, as: Int32.self, op: op)
        case .int64: reduce(contributions, into: buffer, as: Int64.self, op: op)
        }
    }

    private func reduce<T: Comparable & AdditiveArithmetic & BitwiseCopyable>(
        _ contributions: [[UInt8]], into buffer: UnsafeMutableRawBufferPointer, as: T.Type, op: ReduceOp) {
        let out = buffer.bindMemory(to: T.self)
        for i in out.indices {
            var acc: T = contributions[0].withUnsafeBytes { $0.load(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self) }
            for r in 1..<contributions.count {
                let v: T = contributions[r].withUnsafeBytes { $0.load(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self) }
                switch op {
                case .sum: acc = acc + v
                case .max: acc = Swift.max(acc, v)
                case .min: acc = Swift.min(acc, v)
                }
            }
            out[i] = acc
        }
    }

    public func allGather(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer) throws {
        guard recv.count == send.count * size else {
            throw CommError(.invalidArgument, call: "allGather", message: "recv has \(recv.count) bytes, needs \(send.count * size)", rank: worldRank)
        }
        let blocks = try exchangeBlocks(Array(repeating: send, count: size), operation: "allGather")
        for r in 0..<size { try copy(blocks[r], into: recv, at: r * send.count, expected: send.count, "allGather") }
    }

    public func allGatherV(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer, recvCounts: [Int]) throws {
        try checkCounts(recvCounts, size: size, bufferBytes: recv.count, what: "recvCounts", call: "allGatherV", rank: worldRank)
        guard recvCounts[rank] == send.count else {
            throw CommError(.invalidArgument, call: "allGatherV", message: "recvCounts[\(rank)] = \(recvCounts[rank]) but this rank sends \(send.count) bytes", rank: worldRank)
        }
        let blocks = try exchangeBlocks(Array(repeating: send, count: size), operation: "allGatherV")
        let displs = displacements(recvCounts)
        for r in 0..<size { try copy(blocks[r], into: recv, at: displs[r], expected: recvCounts[r], "allGatherV") }
    }

    public func allToAll(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer) throws {
        guard send.count % size == 0, recv.count == send.count else {
            throw CommError(.invalidArgument, call: "allToAll", message: "send \(send.count) / recv \(recv.count) bytes are not \(size) equal blocks", rank: worldRank)
        }
        let block = send.count / size
        let outgoing = (0..<size).map { UnsafeRawBufferPointer(rebasing: send[($0 * block)..<(($0 + 1) * block)]) }
        let blocks = try exchangeBlocks(outgoing, operation: "allToAll")
        for r in 0..<size { try copy(blocks[r], into: recv, at: r * block, expected: block, "allToAll") }
    }

    public func allToAllV(send: UnsafeRawBufferPointer, sendCounts: [Int],
                          recv: UnsafeMutableRawBufferPointer, recvCounts: [Int]) throws {
        try checkCounts(sendCounts, size: size, bufferBytes: send.count, what: "sendCounts", call: "allToAllV", rank: worldRank)
        try checkCounts(recvCounts, size: size, bufferBytes: recv.count, what: "recvCounts", call: "allToAllV", rank: worldRank)
        let sd = displacements(sendCounts), rd = displacements(recvCounts)
        let outgoing = (0..<size).map { UnsafeRawBufferPointer(rebasing: send[sd[$0]..<(sd[$0] + sendCounts[$0])]) }
        let blocks = try exchangeBlocks(outgoing, operation: "allToAllV")
        for r in 0..<size { try copy(blocks[r], into: recv, at: rd[r], expected: recvCounts[r], "allToAllV") }
    }
}

/// Mailbox sends complete when posted.
private final class CompletedSend: PendingSend {
    func wait() throws {}
}

/// Thread-safe result slots for `LocalCommunicator.run`.
private final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<T, Error>) { lock.withLock { slots[index] = value } }
    func values() -> [Result<T, Error>] { lock.withLock { slots.map { $0! } } }
}
