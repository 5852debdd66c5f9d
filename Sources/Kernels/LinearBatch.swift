// linearBatch: several independent `Ops.linear` products (e.g. gate and up of every expert that received tokens)
// in one parallel region. Output bits equal separate `Ops.linear` calls: each (t, o) element runs the same kernel
// and summation sequence; only which thread computes which rows differs. One region instead of one per product
// saves a fork/join per product (a decode step of a 64-expert model issues hundreds of ~50 µs products) and lets
// a thread stream several matrices back to back.
import CKernels
import Foundation
import Tensors

/// One product of `linearBatch`: `out[t, o] = Σ_i x[t, i] · W[o, i]`, `x` `[tokens, W.cols]`, `out` `[tokens, W.rows]`.
public struct LinearJob {
    public let x: UnsafePointer<Float>
    public let tokens: Int
    public let weight: Weight
    public let out: UnsafeMutablePointer<Float>

    public init(x: UnsafePointer<Float>, tokens: Int, weight: Weight, out: UnsafeMutablePointer<Float>) {
        self.x = x
        self.tokens = tokens
        self.weight = weight
        self.out = out
    }

    /// Whether the product has any output (jobs without one are skipped).
    var isLive: Bool { tokens > 0 && weight.rows > 0 }
}

extension Ops {
    /// Average rows per product up to which many small products (decode's experts) share parallel regions; the
    /// engine schedules by it and the planner's cost model predicts with it.
    public static let sharedRegionRowsPerProduct = 8

    /// Runs every job (bit-identical to `linear(x:tokens:weight:out:pool:)` per job). Work is split over the pool's
    /// threads as contiguous runs of row units (4 rows, or an interleaved weight's group) across the concatenated
    /// jobs, balanced by estimated cost.
    public static func linearBatch(_ jobs: [LinearJob], pool: ComputePool) {
        jobs.withUnsafeBufferPointer { linearBatch($0, pool: pool) }
    }

    /// `linearBatch` over jobs in caller storage. Its scratch (prepared jobs, cut points) lives on the stack: a decode
    /// step runs ~120 regions, and their few small heap allocations each, touched right after a product has flushed
    /// the caches, were a visible share of the serial time between products.
    public static func linearBatch(_ jobs: UnsafeBufferPointer<LinearJob>, pool: ComputePool) {
        var liveCount = 0
        for j in jobs where j.isLive { liveCount += 1 }
        if liveCount == 0 { return }
        if pool.threads == 1 || liveCount == 1 {
            for j in jobs where j.isLive {
                linear(x: j.x, tokens: j.tokens, weight: j.weight, out: j.out, pool: pool)
            }
            return
        }
        withUnsafeTemporaryAllocation(of: FusedJob.self, capacity: liveCount) { fused in
            let n = prepare(jobs, into: fused, from: 0, pool: pool)
            if n == 0 { return }
            let ready = UnsafeBufferPointer(rebasing: fused[0..<n])
            defer {
                for f in ready { f.release() }
                fused.baseAddress!.deinitialize(count: n)
            }
            runShares(ready, pool: pool)
        }
    }

    /// `linear(x, w)` for each weight of `weights` (the same input), in one parallel region when `x` has at most
    /// `sharedRegionRows` rows (decode: the products are short and memory-bound, one fork/join and one glue gap fewer);
    /// larger inputs (prefill, compute-bound) run as separate products split over the threads. Same bits either way.
    public static func linear(_ x: Matrix, _ weights: [Weight], pool: ComputePool) -> [Matrix] {
        if x.rows > sharedRegionRows { return weights.map { linear(x, $0, pool: pool) } }
        for w in weights { precondition(x.cols == w.cols, "linear: input width \(x.cols) != weight cols \(w.cols)") }
        let n = weights.count
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: n + 1) { offsets in
            offsets[0] = 0
            for k in 0..<n { offsets[k + 1] = offsets[k] + x.rows * weights[k].rows }
            let flat = UnsafeMutablePointer<Float>.allocate(capacity: max(offsets[n], 1))
            defer { flat.deallocate() }
            x.data.withUnsafeBufferPointer { xp in
                withJobs(n, { k in LinearJob(x: xp.baseAddress!, tokens: x.rows, weight: weights[k], out: flat + offsets[k]) }) {
                    linearBatch($0, pool: pool)
                }
            }
            return (0..<n).map { k in
                Matrix(rows: x.rows, cols: weights[k].rows) { $0.initialize(from: flat + offsets[k], count: offsets[k + 1] - offsets[k]) }
            }
        }
    }

    /// Builds `count` jobs (`make(j)`) on the stack and hands them to `body`: job lists are rebuilt for every region of
    /// a decode step, so they stay off the heap.
    public static func withJobs(_ count: Int, _ make: (Int) -> LinearJob, _ body: (UnsafeBufferPointer<LinearJob>) -> Void) {
        withUnsafeTemporaryAllocation(of: LinearJob.self, capacity: count) { jobs in
            for j in 0..<count { (jobs.baseAddress! + j).initialize(to: make(j)) }
            defer { jobs.baseAddress!.deinitialize(count: count) }
            body(UnsafeBufferPointer(jobs))
        }
    }

    /// Input rows up to which `linear(_:_:pool:)` shares one region between its products.
    public static let sharedRegionRows = 8

    /// `linearBatch(lead)` in a region whose calling thread first runs `prologue`: it writes up to `capacity` more jobs
    /// into the buffer it is given and returns how many; they join the same region (the caller's share, open to
    /// stealing) while the workers already run `lead`. Same bits as `linearBatch` of all the jobs. The jobs'
    /// activations are packed by the caller inside the region, and it may run serial work there (a decode step's
    /// routing and dispatch) that the other threads would otherwise wait through.
    public static func linearBatch(_ lead: UnsafeBufferPointer<LinearJob>, appending capacity: Int, pool: ComputePool,
                                   prologue: (UnsafeMutableBufferPointer<LinearJob>) -> Int) {
        withUnsafeTemporaryAllocation(of: LinearJob.self, capacity: max(capacity, 1)) { more in
            var made = 0
            defer { more.baseAddress!.deinitialize(count: made) }
            if pool.threads == 1 {
                linearBatch(lead, pool: pool)
                made = prologue(UnsafeMutableBufferPointer(rebasing: more[0..<capacity]))
                linearBatch(UnsafeBufferPointer(rebasing: more[0..<made]), pool: pool)
                return
            }
            withUnsafeTemporaryAllocation(of: FusedJob.self, capacity: lead.count + capacity) { fused in
                var n = 0
                defer {
                    for f in fused[0..<n] { f.release() }
                    fused.baseAddress!.deinitialize(count: n)
                }
                let parts = pool.threads
                withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * (lead.count + capacity) + parts + 2) { ints in
                    withUnsafeTemporaryAllocation(of: Double.self, capacity: lead.count + capacity) { groupCost in
                        let view = UnsafeBufferPointer(fused), groups = ints.baseAddress!, firstUnit = groups + lead.count + capacity
                        let cuts = firstUnit + lead.count + capacity + 1
                        firstUnit[0] = 0
                        n = prepare(lead, into: fused, from: 0, pool: pool)
                        let (total, bytes) = unitTables(view, 0..<n, groups: groups, firstUnit: firstUnit, groupCost: groupCost.baseAddress!)
                        // The workers share the lead jobs; the caller's share stays empty until its prologue returns.
                        cuts[0] = 0
                        cutShares(view, 0..<n, total: total, parts: parts - 1, groups: groups, firstUnit: firstUnit,
                                  groupCost: groupCost.baseAddress!, cuts: cuts + 1)
                        let leadJobs = n
                        let minClaim = max(1, firstUnit[n] * 65536 / max(bytes, 1))
                        pool.parallelShares(cuts: UnsafeBufferPointer(start: cuts, count: parts + 1), minClaim: minClaim, prologue: {
                            made = prologue(UnsafeMutableBufferPointer(rebasing: more[0..<capacity]))
                            precondition(made <= capacity, "linearBatch(appending:): \(made) jobs for \(capacity) places")
                            n = prepare(UnsafeBufferPointer(rebasing: more[0..<made]), into: fused, from: leadJobs, pool: pool)
                            _ = unitTables(view, leadJobs..<n, groups: groups, firstUnit: firstUnit, groupCost: groupCost.baseAddress!)
                            return firstUnit[n]
                        }) { range in runUnits(range, view, firstUnit) }
                    }
                }
            }
        }
    }

    /// Prepares the live jobs of `jobs` into `fused` from index `start` (jobs sharing their input with the previous one
    /// share its packed activations); shapes the fused kernels do not cover run through `linear` right away (same bits
    /// either way). Returns the end index.
    private static func prepare(_ jobs: UnsafeBufferPointer<LinearJob>, into fused: UnsafeMutableBufferPointer<FusedJob>,
                                from start: Int, pool: ComputePool) -> Int {
        var n = start
        for j in jobs where j.isLive {
            if let f = FusedJob(j, precision: pool.precision, sharing: n > 0 ? fused[n - 1] : nil) {
                (fused.baseAddress! + n).initialize(to: f)
                n += 1
            } else {
                linear(x: j.x, tokens: j.tokens, weight: j.weight, out: j.out, pool: pool)
            }
        }
        return n
    }

    /// Row units of prepared jobs `range` laid end to end after `firstUnit[range.lowerBound]`: per job its unit count
    /// and the cost of one unit, and `firstUnit[j + 1]`. Returns the jobs' total cost and weight bytes. Cost of one
    /// row unit: weight bytes streamed (memory-bound decode) plus multiply-adds (compute-bound prefill), in comparable
    /// units (~3 bytes of streaming per multiply-add of one token on this CPU class).
    private static func unitTables(_ fused: UnsafeBufferPointer<FusedJob>, _ range: Range<Int>,
                                   groups: UnsafeMutablePointer<Int>, firstUnit: UnsafeMutablePointer<Int>,
                                   groupCost: UnsafeMutablePointer<Double>) -> (cost: Double, bytes: Int) {
        var total = 0.0, bytes = 0
        for j in range {
            let f = fused[j]
            groupCost[j] = Double(f.unit * f.cols) * (3 * Double(f.elementBytes) + Double(f.tokens))
            groups[j] = ceilDiv(f.rows, f.unit)
            firstUnit[j + 1] = firstUnit[j] + groups[j]
            total += groupCost[j] * Double(groups[j])
            bytes += f.unit * f.cols * f.elementBytes * groups[j]
        }
        return (total, bytes)
    }

    /// Cut points of jobs `range` (from unit 0) into `parts` shares of equal cost: `cuts[0...parts]`, share p starting
    /// at the first unit whose cumulative cost reaches p/parts of `total`. Units of one job cost the same, so the unit
    /// is found by division, job by job (no walk over every unit).
    private static func cutShares(_ fused: UnsafeBufferPointer<FusedJob>, _ range: Range<Int>, total: Double, parts: Int,
                                  groups: UnsafeMutablePointer<Int>, firstUnit: UnsafeMutablePointer<Int>,
                                  groupCost: UnsafeMutablePointer<Double>, cuts: UnsafeMutablePointer<Int>) {
        var nCuts = 1
        cuts[0] = 0
        var acc = 0.0
        for j in range {
            let count = groups[j], jobCost = groupCost[j] * Double(count)
            while nCuts < parts && acc + jobCost > total * Double(nCuts) / Double(parts) {
                let g = max(0, Int(((total * Double(nCuts) / Double(parts) - acc) / groupCost[j]).rounded(.up)))
                cuts[nCuts] = firstUnit[j] + min(g, count)
                nCuts += 1
            }
            acc += jobCost
        }
        while nCuts < parts + 1 { cuts[nCuts] = firstUnit[range.upperBound]; nCuts += 1 }
    }

    /// Runs the row units `range` of the prepared jobs (`firstUnit` as `unitTables` made it).
    private static func runUnits(_ range: Range<Int>, _ fused: UnsafeBufferPointer<FusedJob>, _ firstUnit: UnsafeMutablePointer<Int>) {
        var j = 0
        while firstUnit[j + 1] <= range.lowerBound { j += 1 }
        var u = range.lowerBound
        while u < range.upperBound {
            let stop = min(range.upperBound, firstUnit[j + 1]), unit = fused[j].unit
            fused[j].run(rows: ((u - firstUnit[j]) * unit)..<min(fused[j].rows, (stop - firstUnit[j]) * unit))
            u = stop
            j += 1
        }
    }

    /// Runs prepared jobs as one parallel region: their row units (4 rows, or an interleaved weight's group) laid end
    /// to end, cut into one share per thread by estimated cost, balanced at run time by `parallelShares`.
    static func runShares(_ fused: UnsafeBufferPointer<FusedJob>, pool: ComputePool) {
        let jobs = fused.count, parts = pool.threads
        // Scratch on the stack: groups [jobs], firstUnit [jobs + 1], cuts [parts + 1]; groupCost [jobs].
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * jobs + parts + 2) { ints in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: jobs) { groupCost in
                let groups = ints.baseAddress!, firstUnit = groups + jobs, cuts = firstUnit + jobs + 1
                firstUnit[0] = 0
                let (total, bytes) = unitTables(fused, 0..<jobs, groups: groups, firstUnit: firstUnit, groupCost: groupCost.baseAddress!)
                cutShares(fused, 0..<jobs, total: total, parts: parts, groups: groups, firstUnit: firstUnit, groupCost: groupCost.baseAddress!, cuts: cuts)
                // Smallest claim ~64 KB of weights: a claim costs one kernel call (~0.1 µs), 64 KB streams in ~2 µs.
                let minClaim = max(1, firstUnit[jobs] * 65536 / max(bytes, 1))
                pool.parallelShares(cuts: UnsafeBufferPointer(start: cuts, count: parts + 1), minClaim: minClaim) { range in
                    runUnits(range, fused, firstUnit)
                }
            }
        }
    }
}

/// A job with its activations prepared for a row-range C kernel.
/// Also `Ops.linear`'s native path: the one place that picks the C kernel and activation layout per dtype.
/// Plain data (no closure per job: a decode step prepares hundreds of jobs, serial between products).
struct FusedJob {
    /// Which C kernel runs, and so which activation layout `prepared` holds.
    enum Kernel: UInt8 { case f32, bf16, fp8, bf16dot }

    let rows: Int, cols: Int, tokens: Int
    /// Rows per work unit when splitting over threads: 4, or the weight's interleaved group (whole groups per thread).
    let unit: Int
    let kernel: Kernel
    /// Bytes per weight element the kernel streams.
    var elementBytes: Int {
        switch kernel {
        case .f32: return 4
        case .bf16, .bf16dot: return 2
        case .fp8: return 1
        }
    }
    private let weights: UnsafeRawPointer
    private let scales: UnsafePointer<Float>?
    private let scaleCols: Int, chunks: Int, stride: Int, group: Int, packedEnd: Int
    private let x: UnsafePointer<Float>
    private let out: UnsafeMutablePointer<Float>
    private let prepared: UnsafeMutableRawPointer
    /// Whether `prepared` was allocated here (false: borrowed from the previous job of the same input).
    private let ownsPrepared: Bool

    /// `sharing`: the previous job of a batch; when it reads the same input rows with the same kernel (gate and up of
    /// one expert, q_a and kv_a), its prepared activations are reused instead of packed again.
    init?(_ j: LinearJob, precision: MatmulPrecision, sharing previous: FusedJob? = nil) {
        let w = j.weight, cols = w.cols
        guard CPUFeatures.avx512 else { return nil }
        switch w.storage {
        case .f32(let p):
            if w.group > 0 { return nil }  // row-major only; a partial last chunk is read masked
            kernel = .f32; weights = UnsafeRawPointer(p); scales = nil
        case .bf16(let p):
            if cols % linearChunk != 0 { return nil }
            kernel = precision == .bf16 && CPUFeatures.avx512bf16 ? .bf16dot : .bf16
            weights = UnsafeRawPointer(p); scales = nil
        case .fp8e4m3(let p, let s):
            if cols % linearChunk != 0 { return nil }
            kernel = .fp8; weights = UnsafeRawPointer(p); scales = s
        case .f16: return nil
        }
        rows = w.rows
        self.cols = cols
        tokens = j.tokens
        unit = max(4, w.group)
        chunks = cols / linearChunk
        scaleCols = w.scaleCols
        group = w.group
        packedEnd = w.packedRows
        x = j.x
        out = j.out
        stride = kernel == .bf16dot ? cols : ceilDiv(cols, linearChunk) * linearChunk  // F32: partial chunk zero-padded
        if let previous, previous.x == x, previous.tokens == tokens, previous.cols == cols, previous.kernel == kernel {
            prepared = previous.prepared
            ownsPrepared = false
            return
        }
        ownsPrepared = true
        let n = max(tokens * stride, 1)
        switch kernel {
        case .bf16dot:
            let xb = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            for i in 0..<(tokens * cols) { xb[i] = floatToBF16(j.x[i]) }
            prepared = UnsafeMutableRawPointer(xb)
        case .f32, .bf16, .fp8:
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: n)
            switch kernel {
            case .f32: packActivations(F32Decoder.self, x: x, tokens: tokens, cols: cols, stride: stride, into: packed)
            case .bf16: packActivations(BF16Decoder.self, x: x, tokens: tokens, cols: cols, stride: stride, into: packed)
            default: packActivations(FP8Decoder.self, x: x, tokens: tokens, cols: cols, stride: stride, into: packed)
            }
            prepared = UnsafeMutableRawPointer(packed)
        }
    }

    func run(rows r: Range<Int>) {
        switch kernel {
        case .f32:
            mr_linear_f32(weights.assumingMemoryBound(to: Float.self), cols, chunks, prepared.assumingMemoryBound(to: Float.self),
                          stride, tokens, out, rows, r.lowerBound, r.upperBound)
        case .bf16:
            mr_linear_bf16(weights.assumingMemoryBound(to: UInt16.self), cols, chunks, prepared.assumingMemoryBound(to: Float.self),
                           stride, tokens, out, rows, r.lowerBound, r.upperBound, group, packedEnd)
        case .fp8:
            mr_linear_fp8(weights.assumingMemoryBound(to: UInt8.self), scales!, scaleCols, cols, chunks,
                          prepared.assumingMemoryBound(to: Float.self), stride, tokens, out, rows, r.lowerBound, r.upperBound,
                          group, packedEnd)
        case .bf16dot:
            mr_linear_bf16dot(weights.assumingMemoryBound(to: UInt16.self), cols, chunks, prepared.assumingMemoryBound(to: UInt16.self),
                              cols, tokens, out, rows, r.lowerBound, r.upperBound, group, packedEnd)
        }
    }

    func release() { if ownsPrepared { prepared.deallocate() } }
}

extension Weight {
    /// This weight in the decode kernels' interleaved layout (groups of the 8 rows one decode block reads; BF16 decode
    /// reads two groups at a time, from the first and second half of a thread's rows), or self where it does not pay:
    /// no AVX-512 kernels, partial chunks, and every dtype but
    /// BF16 (engine decode, synth medium, 1 thread: BF16 ~21.5 -> ~24 GB/s; FP8 ~17 GB/s either way, its kernel
    /// is bound by decoding, not by the read order, so the copy would cost memory for nothing).
    /// The copy's row groups are split over `pool`'s threads: at load, first touch of the fresh pages (zeroing, and on
    /// a VM the host backing them) costs ~10x the copy itself, and it runs in parallel on several cores.
    public func interleavedForDecode(pool: ComputePool = .serial) -> Weight {
        guard CPUFeatures.avx512, case .bf16 = storage else { return self }
        return interleaved(group: Int(mr_interleave_group())) { dst, src, rows, rowBytes, chunkBytes, g in
            let d = UnsafeTransfer(dst), s = UnsafeTransfer(src), groups = rows / g
            // Groups [a, b) land at the same byte offset as their rows; the last part also copies the row-major tail.
            pool.parallelFor(count: max(groups, 1), granule: max(1, (1 << 20) / max(g * rowBytes, 1))) { range in
                let first = range.lowerBound * g * rowBytes
                let count = range.upperBound >= groups ? rows - range.lowerBound * g : range.count * g
                mr_interleave(d.value + first, s.value + first, count, rowBytes, chunkBytes, g)
            }
        }
    }
}
