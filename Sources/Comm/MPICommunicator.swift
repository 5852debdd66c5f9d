// MPICommunicator: the Communicator contract over OpenMPI. Every call is checked; blocking operations
// are issued non-blocking and completed by polling under the Watchdog, so a stuck rank can abort the job.
import CMPI
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Process-wide MPI state: initialisation with an explicit thread level, the world communicator, finalisation.
public enum MPIEnvironment {
    nonisolated(unsafe) private static var world: MPICommunicator?
    nonisolated(unsafe) private static var finalized = false

    /// Initialise MPI once (MPI_THREAD_FUNNELED: only the main thread talks to MPI; compute threads never do)
    /// and return the world communicator. Works without mpirun (singleton: rank 0 of 1).
    public static func initialize(timeout: Double = Watchdog.defaultTimeout) throws -> MPICommunicator {
        if let world { return world }
        guard !finalized else {
            throw CommError(.environment, call: "MPI_Init_thread", message: "MPI was already finalized", rank: 0)
        }
        var provided: Int32 = 0
        let required = cmpi_thread_funneled()
        let rc = MPI_Init_thread(nil, nil, required, &provided)
        guard rc == cmpi_success() else {
            throw CommError(.environment, call: "MPI_Init_thread", message: "error code \(rc)", rank: 0,
                            hint: "check that OpenMPI is installed (apt-get install libopenmpi-dev openmpi-bin) and mpirun works")
        }
        guard provided >= required else {
            throw CommError(.environment, call: "MPI_Init_thread",
                            message: "MPI provides thread level \(provided), moerun needs MPI_THREAD_FUNNELED (\(required))", rank: 0)
        }
        var rank: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &rank)
        let watchdog = Watchdog(timeout: timeout, action: .abortJob({ line in
            FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
            JobAbortHook.run(line)
            // If the runtime cannot tear the job down, leave anyway so nothing hangs.
            Thread.detachNewThread {
                sleep(10)
                _exit(124)
            }
            MPI_Abort(cmpi_comm_world(), 3)
            _exit(3)
        }))
        let comm = try MPICommunicator(handle: cmpi_comm_world(), name: "world", worldRank: Int(rank),
                                       watchdog: watchdog, owned: false)
        world = comm
        LastWait.installTerminationReport()
        return comm
    }

    /// Whether MPI is initialised and not yet finalized.
    public static var isActive: Bool { world != nil && !finalized }

    /// Finalize MPI (idempotent). Call once at the end of the program on every rank.
    public static func finalize() {
        guard world != nil, !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// Abort every rank of the job with `code` after printing `message` (used for fatal errors on one rank).
    public static func abort(message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
        JobAbortHook.run(message)
        if world != nil && !finalized { MPI_Abort(cmpi_comm_world(), code) }
        exit(code)
    }
}

/// A Communicator backed by an MPI communicator handle.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let worldRank: Int
    public let name: String
    public let watchdog: Watchdog
    private let handle: MPI_Comm
    private let owned: Bool
    private var splitCount = 0

    init(handle: MPI_Comm, name: String, worldRank: Int, watchdog: Watchdog, owned: Bool) throws {
        self.handle = handle
        self.name = name
        self.worldRank = worldRank
        self.watchdog = watchdog
        self.owned = owned
        var r: Int32 = 0, s: Int32 = 0
        var rc = MPI_Comm_set_errhandler(handle, cmpi_errors_return())
        if rc == cmpi_success() { rc = MPI_Comm_rank(handle, &r) }
        if rc == cmpi_success() { rc = MPI_Comm_size(handle, &s) }
        self.rank = Int(r)
        self.size = Int(s)
        try check(rc, "MPI_Comm_set_errhandler/rank/size")
    }

    deinit {
        if owned && MPIEnvironment.isActive {
            var h: MPI_Comm? = handle
            MPI_Comm_free(&h)
        }
    }

    // MARK: error checking and completion

    private func check(_ rc: Int32, _ call: String, file: String = #fileID, line: Int = #line) throws {
        guard rc != cmpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(rc, &buffer, &length)
        let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CommError(.mpi, call: call, message: "\(text) (code \(rc)) on \(name)", rank: worldRank, file: file, line: line)
    }

    private func int32(_ value: Int, _ call: String) throws -> Int32 {
        guard let v = Int32(exactly: value) else {
            throw CommError(.invalidArgument, call: call, message: "count \(value) exceeds MPI's 32-bit limit", rank: worldRank,
                            hint: "split the message into chunks below 2 GiB")
        }
        return v
    }

    /// Complete one request by polling under the watchdog.
    private func complete(_ request: inout MPI_Request?, _ call: String, status: UnsafeMutablePointer<MPI_Status>? = nil) throws {
        let sequence = watchdog.nextSequence()
        try watchdog.wait(rank: rank, worldRank: worldRank, communicator: name, operation: call, sequence: sequence) {
            var flag: Int32 = 0
            try check(MPI_Test(&request, &flag, status ?? cmpi_status_ignore()), "MPI_Test(\(call))")
            return flag != 0
        }
    }

    private func completeAll(_ requests: inout [MPI_Request?], _ call: String) throws {
        let sequence = watchdog.nextSequence()
        try watchdog.wait(rank: rank, worldRank: worldRank, communicator: name, operation: call, sequence: sequence) {
            var flag: Int32 = 0
            try check(MPI_Testall(Int32(requests.count), &requests, &flag, nil), "MPI_Testall(\(call))")
            return flag != 0
        }
    }

    private func base(_ p: UnsafeRawBufferPointer) -> UnsafeRawPointer? { p.baseAddress ?? UnsafeRawPointer(bitPattern: 8) }
    private func base(_ p: UnsafeMutableRawBufferPointer) -> UnsafeMutableRawPointer? { p.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 8) }

    // MARK: Communicator

    public func split(color: Int, key: Int) throws -> (any Communicator)? {
        splitCount += 1
        var newHandle: MPI_Comm? = cmpi_comm_null()
        try check(MPI_Comm_split(handle, color < 0 ? cmpi_undefined() : try int32(color, "MPI_Comm_split"),
                                 try int32(key, "MPI_Comm_split"), &newHandle), "MPI_Comm_split")
        guard color >= 0, let h = newHandle, h != cmpi_comm_null() else { return nil }
        return try MPICommunicator(handle: h, name: "\(name)/split#\(splitCount)(color \(color))",
                                   worldRank: worldRank, watchdog: watchdog, owned: true)
    }

    public func barrier() throws {
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ibarrier(handle, &request), "MPI_Ibarrier")
        try complete(&request, "barrier")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ibcast(base(buffer), try int32(buffer.count, "MPI_Ibcast"), cmpi_byte(),
                             try int32(root, "MPI_Ibcast"), handle, &request), "MPI_Ibcast")
        try complete(&request, "broadcast(root \(root))")
    }

    public func send(_ buffer: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws {
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Isend(base(buffer), try int32(buffer.count, "MPI_Isend"), cmpi_byte(),
                            try int32(destination, "MPI_Isend"), try int32(tag, "MPI_Isend"), handle, &request), "MPI_Isend")
        try complete(&request, "send(to \(destination), tag \(tag))")
    }

    public func sendAsync(_ buffer: UnsafeRawBufferPointer, to destination: Int, tag: Int) throws -> any PendingSend {
        let pending = MPIPendingSend(bytes: buffer, communicator: self, label: "send(to \(destination), tag \(tag))")
        try check(MPI_Isend(pending.storage.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 8), try int32(buffer.count, "MPI_Isend"), cmpi_byte(),
                            try int32(destination, "MPI_Isend"), try int32(tag, "MPI_Isend"), handle, &pending.request), "MPI_Isend")
        return pending
    }

    /// Completes a pending send (used by MPIPendingSend).
    fileprivate func finish(_ pending: MPIPendingSend) throws {
        try complete(&pending.request, pending.label)
    }

    public func recv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws {
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Irecv(base(buffer), try int32(buffer.count, "MPI_Irecv"), cmpi_byte(),
                            try int32(source, "MPI_Irecv"), try int32(tag, "MPI_Irecv"), handle, &request), "MPI_Irecv")
        var status = MPI_Status()
        try complete(&request, "recv(from \(source), tag \(tag))", status: &status)
        var count: Int32 = 0
        try check(MPI_Get_count(&status, cmpi_byte(), &count), "MPI_Get_count")
        guard Int(count) == buffer.count else {
            throw CommError(.invalidArgument, call: "recv(from \(source), tag \(tag))",
                            message: "expected \(buffer.count) bytes, received \(count)", rank: worldRank)
        }
    }

    public func sendRecv(send: UnsafeRawBufferPointer, to destination: Int,
                         recv: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) throws {
        var requests: [MPI_Request?] = [cmpi_request_null(), cmpi_request_null()]
        try check(MPI_Irecv(base(recv), try int32(recv.count, "MPI_Irecv"), cmpi_byte(), try int32(source, "MPI_Irecv"),
                            try int32(tag, "MPI_Irecv"), handle, &requests[0]), "MPI_Irecv")
        try check(MPI_Isend(base(send), try int32(send.count, "MPI_Isend"), cmpi_byte(), try int32(destination, "MPI_Isend"),
                            try int32(tag, "MPI_Isend"), handle, &requests[1]), "MPI_Isend")
        try completeAll(&requests, "sendRecv(to \(destination), from \(source), tag \(tag))")
    }

    public func allReduce(_ buffer: UnsafeMutableRawBufferPointer, element: ReduceElement, op: ReduceOp) throws {
        let datatype: MPI_Datatype
        switch element {
        case .float: datatype = cmpi_float()
        case .double: datatype = cmpi_double()
        case .int32: datatype = cmpi_int32()
        case .int64: datatype = cmpi_int64()
        }
        let mpiOp: MPI_Op
        switch op {
        case .sum: mpiOp = cmpi_op_sum()
        case .max: mpiOp = cmpi_op_max()
        case .min: mpiOp = cmpi_op_min()
        }
        guard buffer.count % element.byteWidth == 0 else {
            throw CommError(.invalidArgument, call: "allReduce", message: "\(buffer.count) bytes is not a whole number of \(element)", rank: worldRank)
        }
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Iallreduce(cmpi_in_place(), base(buffer), try int32(buffer.count / element.byteWidth, "MPI_Iallreduce"),
                                 datatype, mpiOp, handle, &request), "MPI_Iallreduce")
        try complete(&request, "allReduce(\(op.rawValue), \(element.rawValue))")
    }

    public func allGather(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer) throws {
        guard recv.count == send.count * size else {
            throw CommError(.invalidArgument, call: "allGather", message: "recv has \(recv.count) bytes, needs \(send.count * size)", rank: worldRank)
        }
        var request: MPI_Request? = cmpi_request_null()
        let n = try int32(send.count, "MPI_Iallgather")
        try check(MPI_Iallgather(base(send), n, cmpi_byte(), base(recv), n, cmpi_byte(), handle, &request), "MPI_Iallgather")
        try complete(&request, "allGather")
    }

    public func allGatherV(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer, recvCounts: [Int]) throws {
        try checkCounts(recvCounts, size: size, bufferBytes: recv.count, what: "recvCounts", call: "allGatherV", rank: worldRank)
        guard recvCounts[rank] == send.count else {
            throw CommError(.invalidArgument, call: "allGatherV", message: "recvCounts[\(rank)] = \(recvCounts[rank]) but this rank sends \(send.count) bytes", rank: worldRank)
        }
        let counts = try recvCounts.map { try int32($0, "MPI_Iallgatherv") }
        let displs = try displacements(recvCounts).map { try int32($0, "MPI_Iallgatherv") }
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Iallgatherv(base(send), try int32(send.count, "MPI_Iallgatherv"), cmpi_byte(), base(recv),
                                  counts, displs, cmpi_byte(), handle, &request), "MPI_Iallgatherv")
        try complete(&request, "allGatherV")
    }

    public func allToAll(send: UnsafeRawBufferPointer, recv: UnsafeMutableRawBufferPointer) throws {
        guard send.count % size == 0, recv.count == send.count else {
            throw CommError(.invalidArgument, call: "allToAll", message: "send \(send.count) / recv \(recv.count) bytes are not \(size) equal blocks", rank: worldRank)
        }
        let block = try int32(send.count / size, "MPI_Ialltoall")
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ialltoall(base(send), block, cmpi_byte(), base(recv), block, cmpi_byte(), handle, &request), "MPI_Ialltoall")
        try complete(&request, "allToAll")
    }

    public func allToAllV(send: UnsafeRawBufferPointer, sendCounts: [Int],
                          recv: UnsafeMutableRawBufferPointer, recvCounts: [Int]) throws {
        try checkCounts(sendCounts, size: size, bufferBytes: send.count, what: "sendCounts", call: "allToAllV", rank: worldRank)
        try checkCounts(recvCounts, size: size, bufferBytes: recv.count, what: "recvCounts", call: "allToAllV", rank: worldRank)
        // Open MPI 4.1's libnbc completes MPI_Ialltoallv at once on a rank whose counts are all zero, while its
        // peers still wait for that rank's zero-byte messages: the job hangs. Such a rank sends one byte to
        // itself instead (its self block is private to it, so peers see the same counts).
        if sendCounts.allSatisfy({ $0 == 0 }) && recvCounts.allSatisfy({ $0 == 0 }) {
            var selfCounts = [Int32](repeating: 0, count: size)
            selfCounts[rank] = 1
            let zeros = [Int32](repeating: 0, count: size)
            var scratch: (UInt64, UInt64) = (0, 0)
            var request: MPI_Request? = cmpi_request_null()
            try withUnsafeMutableBytes(of: &scratch) { raw in
                try check(MPI_Ialltoallv(raw.baseAddress!, selfCounts, zeros, cmpi_byte(), raw.baseAddress! + 8, selfCounts, zeros,
                                         cmpi_byte(), handle, &request), "MPI_Ialltoallv")
                try complete(&request, "allToAllV")
            }
            return
        }
        let sc = try sendCounts.map { try int32($0, "MPI_Ialltoallv") }
        let sd = try displacements(sendCounts).map { try int32($0, "MPI_Ialltoallv") }
        let rc = try recvCounts.map { try int32($0, "MPI_Ialltoallv") }
        let rd = try displacements(recvCounts).map { try int32($0, "MPI_Ialltoallv") }
        var request: MPI_Request? = cmpi_request_null()
        try check(MPI_Ialltoallv(base(send), sc, sd, cmpi_byte(), base(recv), rc, rd, cmpi_byte(), handle, &request), "MPI_Ialltoallv")
        try complete(&request, "allToAllV")
    }
}

/// An MPI_Isend in flight with its own copy of the bytes.
final class MPIPendingSend: PendingSend {
    let storage: UnsafeMutableRawBufferPointer
    var request: MPI_Request? = cmpi_request_null()
    let label: String
    private let communicator: MPICommunicator
    private var done = false

    init(bytes: UnsafeRawBufferPointer, communicator: MPICommunicator, label: String) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if bytes.count > 0 { storage.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        self.communicator = communicator
        self.label = label
    }

    func wait() throws {
        guard !done else { return }
        try communicator.finish(self)
        done = true
    }

    deinit {
        // A send never waited for is completed here so its buffer outlives the transfer.
        if !done && MPIEnvironment.isActive { try? communicator.finish(self) }
        storage.deallocate()
    }
}
