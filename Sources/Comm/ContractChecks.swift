// CommContract: the Communicator contract as executable checks with content verification. The same checks
// run in unit tests against LocalCommunicator and inside `moerun selftest` against MPICommunicator.

/// One contract check: runs on every rank of a communicator and returns failure descriptions (empty = pass).
public struct ContractCheck: Sendable {
    public let name: String
    public let run: @Sendable (any Communicator) throws -> [String]
}

public enum CommContract {
    /// Deterministic payload value sent from `source` to `destination` at `index`.
    @inlinable public static func value(_ source: Int, _ destination: Int, _ index: Int) -> Int64 {
        Int64(source) * 1_000_000 + Int64(destination) * 1_000 + Int64(index % 1_000)
    }

    /// Elements sent from `source` to `destination` in the uneven all-to-all (zeros included).
    @inlinable public static func unevenCount(_ source: Int, _ destination: Int) -> Int {
        (source * 7 + destination * 3) % 5
    }

    public static let all: [ContractCheck] = [
        ContractCheck(name: "barrier") { comm in
            try comm.barrier()
            return []
        },
        ContractCheck(name: "broadcast") { comm in
            var failures: [String] = []
            for root in 0..<comm.size {
                var values = (0..<33).map { comm.rank == root ? value(root, 0, $0) : -1 }
                try comm.broadcast(&values, root: root)
                if values != (0..<33).map({ value(root, 0, $0) }) { failures.append("root \(root): wrong payload") }
            }
            return failures
        },
        ContractCheck(name: "send/recv") { comm in
            guard comm.size > 1 else { return [] }
            let next = (comm.rank + 1) % comm.size, previous = (comm.rank + comm.size - 1) % comm.size
            let outgoing = (0..<17).map { value(comm.rank, next, $0) }
            // Even ranks send first, odd ranks receive first: exercises both orders without relying on buffering.
            var incoming: [Int64] = []
            if comm.rank % 2 == 0 {
                try comm.send(outgoing, to: next, tag: 7)
                incoming = try comm.recv(count: 17, from: previous, tag: 7)
            } else {
                incoming = try comm.recv(count: 17, from: previous, tag: 7)
                try comm.send(outgoing, to: next, tag: 7)
            }
            return incoming == (0..<17).map({ value(previous, comm.rank, $0) }) ? [] : ["wrong payload from rank \(previous)"]
        },
        ContractCheck(name: "sendAsync") { comm in
            let next = (comm.rank + 1) % comm.size, previous = (comm.rank + comm.size - 1) % comm.size
            // Post first, receive second, complete last: the order a pipeline stage uses. 64 KiB exceeds eager limits.
            var outgoing = (0..<8192).map { value(comm.rank, next, $0) }
            let pending = try comm.sendAsync(outgoing, to: next, tag: 13)
            outgoing[0] = -1  // the send owns a copy
            let incoming: [Int64] = try comm.recv(count: 8192, from: previous, tag: 13)
            try pending.wait()
            return incoming == (0..<8192).map({ value(previous, comm.rank, $0) }) ? [] : ["wrong payload from rank \(previous)"]
        },
        ContractCheck(name: "sendRecv") { comm in
            let next = (comm.rank + 1) % comm.size, previous = (comm.rank + comm.size - 1) % comm.size
            let outgoing = (0..<9).map { value(comm.rank, next, $0) }
            var incoming = [Int64](repeating: 0, count: 9)
            try outgoing.withUnsafeBytes { s in
                try incoming.withUnsafeMutableBytes { try comm.sendRecv(send: s, to: next, recv: $0, from: previous, tag: 11) }
            }
            return incoming == (0..<9).map({ value(previous, comm.rank, $0) }) ? [] : ["wrong payload from rank \(previous)"]
        },
        ContractCheck(name: "allReduce") { comm in
            var failures: [String] = []
            let n = comm.size
            for op in ReduceOp.allCases {
                func expected(_ i: Int) -> Int64 {
                    let contributions = (0..<n).map { Int64(($0 * 13 + i * 7) % 23) - 11 }
                    switch op {
                    case .sum: return contributions.reduce(0, +)
                    case .max: return contributions.max()!
                    case .min: return contributions.min()!
                    }
                }
                let mine = (0..<10).map { Int64((comm.rank * 13 + $0 * 7) % 23) - 11 }
                var i64 = mine
                try comm.allReduce(&i64, op: op)
                var i32 = mine.map { Int32($0) }
                try comm.allReduce(&i32, op: op)
                var f32 = mine.map { Float($0) * 0.5 }
                try comm.allReduce(&f32, op: op)
                var f64 = mine.map { Double($0) * 0.25 }
                try comm.allReduce(&f64, op: op)
                for i in 0..<10 {
                    let e = expected(i)
                    if i64[i] != e { failures.append("\(op) Int64[\(i)] = \(i64[i]), expected \(e)") }
                    if Int64(i32[i]) != e { failures.append("\(op) Int32[\(i)] = \(i32[i]), expected \(e)") }
                    if f32[i] != Float(e) * 0.5 { failures.append("\(op) Float[\(i)] = \(f32[i]), expected \(Float(e) * 0.5)") }
                    if f64[i] != Double(e) * 0.25 { failures.append("\(op) Double[\(i)] = \(f64[i]), expected \(Double(e) * 0.25)") }
                }
            }
            return failures
        },
        ContractCheck(name: "allGather") { comm in
            let gathered = try comm.allGather((0..<5).map { value(comm.rank, 0, $0) })
            let expected = (0..<comm.size).flatMap { r in (0..<5).map { value(r, 0, $0) } }
            return gathered == expected ? [] : ["wrong gathered payload"]
        },
        ContractCheck(name: "allGatherV") { comm in
            let count = { (r: Int) in (r * 3) % 5 }
            let gathered = try comm.allGatherV((0..<count(comm.rank)).map { value(comm.rank, 0, $0) })
            var failures: [String] = []
            for r in 0..<comm.size where gathered[r] != (0..<count(r)).map({ value(r, 0, $0) }) {
                failures.append("block from rank \(r) wrong")
            }
            return failures
        },
        ContractCheck(name: "allToAll") { comm in
            let n = comm.size, block = 4
            let send = (0..<n).flatMap { dst in (0..<block).map { value(comm.rank, dst, $0) } }
            var recv = [Int64](repeating: -1, count: n * block)
            try send.withUnsafeBytes { s in try recv.withUnsafeMutableBytes { try comm.allToAll(send: s, recv: $0) } }
            let expected = (0..<n).flatMap { src in (0..<block).map { value(src, comm.rank, $0) } }
            return recv == expected ? [] : ["wrong all-to-all payload"]
        },
        ContractCheck(name: "allToAllV") { comm in
            let blocks = (0..<comm.size).map { dst in (0..<unevenCount(comm.rank, dst)).map { value(comm.rank, dst, $0) } }
            let received = try comm.exchange(blocks)
            var failures: [String] = []
            for src in 0..<comm.size where received[src] != (0..<unevenCount(src, comm.rank)).map({ value(src, comm.rank, $0) }) {
                failures.append("block from rank \(src): got \(received[src].count) elements, expected \(unevenCount(src, comm.rank))")
            }
            return failures
        },
        ContractCheck(name: "allToAllV-idle") { comm in
            // MoE pattern: only rank 0 has tokens; every other rank sends nothing, and the odd ranks also receive
            // nothing, so some ranks have all-zero counts. Repeated, because a wrong implementation hangs later.
            var failures: [String] = []
            for round in 0..<4 {
                let blocks = (0..<comm.size).map { dst in
                    comm.rank == 0 && dst % 2 == 0 ? (0..<(round + 1)).map { value(0, dst, $0) } : []
                }
                let received = try comm.exchange(blocks)
                for src in 0..<comm.size {
                    let expected = src == 0 && comm.rank % 2 == 0 ? (0..<(round + 1)).map { value(0, comm.rank, $0) } : []
                    if received[src] != expected { failures.append("round \(round): wrong block from rank \(src)") }
                }
            }
            return failures
        },
    ]

    /// Split checks: groups by parity with reversed keys; the last rank (when size > 2) opts out with color -1.
    public static func splitGroups(_ comm: any Communicator) throws -> (sub: (any Communicator)?, failures: [String]) {
        let optOut = comm.size > 2 && comm.rank == comm.size - 1
        let color = optOut ? -1 : comm.rank % 2
        let sub = try comm.split(color: color, key: -comm.rank)
        var failures: [String] = []
        if optOut {
            if sub != nil { failures.append("negative color still returned a communicator") }
            return (nil, failures)
        }
        guard let sub else { return (nil, ["split returned nil for color \(color)"]) }
        let members = (0..<comm.size).filter { $0 % 2 == color && !(comm.size > 2 && $0 == comm.size - 1) }
        let expectedRank = members.sorted(by: >).firstIndex(of: comm.rank)!
        if sub.size != members.count { failures.append("split size \(sub.size), expected \(members.count)") }
        if sub.rank != expectedRank { failures.append("split rank \(sub.rank), expected \(expectedRank) (keys reverse the order)") }
        return (sub, failures)
    }
}
