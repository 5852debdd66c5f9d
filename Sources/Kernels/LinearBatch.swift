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
}

extension Ops {
    /// Runs every job (bit-identical to `linear(x:tokens:weight:out:pool:)` per job). Work is split over the pool's
    /// threads as contiguous runs of row units (4 rows, or an interleaved weight's group) across the concatenated
    /// jobs, balanced by estimated cost.
    public static func linearBatch(_ jobs: [LinearJob], pool: ComputePool) {
        let live = jobs.filter { $0.tokens > 0 && $0.weight.rows > 0 }
        if live.isEmpty { return }
        if pool.threads == 1 || live.count == 1 {
            for j in live { linear(x: j.x, tokens: j.tokens, weight: j.weight, out: j.out, pool: pool) }
            return
        }
        // Shapes the fused kernels do not cover go through `linear` one by one (same bits either way).
        var fused: [FusedJob] = []
        for j in live {
            if let f = FusedJob(j, precision: pool.precision, sharing: fused.last) { fused.append(f) } else {
                linear(x: j.x, tokens: j.tokens, weight: j.weight, out: j.out, pool: pool)
            }
        }
        if fused.isEmpty { return }
        defer { for f in fused { f.release() } }
        runShares(fused, pool: pool)
    }

    /// `linear(x, w)` for each weight of `weights` (the same input), in one parallel region when `x` has at most
    /// `sharedRegionRows` rows (decode: the products are short and memory-bound, one fork/join and one glue gap fewer);
    /// larger inputs (prefill, compute-bound) run as separate products split over the threads. Same bits either way.
    public static func linear(_ x: Matrix, _ weights: [Weight], pool: ComputePool) -> [Matrix] {
        if x.rows > sharedRegionRows { return weights.map { linear(x, $0, pool: pool) } }
        for w in weights { precondition(x.cols == w.cols, "linear: input width \(x.cols) != weight cols \(w.cols)") }
        var offsets = [0]
        for w in weights { offsets.append(offsets.last! + x.rows * w.rows) }
        var flat = [Float](repeating: 0, count: offsets.last!)
        x.data.withUnsafeBufferPointer { xp in
            flat.withUnsafeMutableBufferPointer { op in
                linearBatch(weights.indices.map { k in
                    LinearJob(x: xp.baseAddress!, tokens: x.rows, weight: weights[k], out: op.baseAddress! + offsets[k])
                }, pool: pool)
            }
        }
        return weights.indices.map { k in Matrix(rows: x.rows, cols: weights[k].rows, data: Array(flat[offsets[k]..<offsets[k + 1]])) }
    }

    /// Input rows up to which `linear(_:_:pool:)` shares one region between its products.
    public static let sharedRegionRows = 8

    /// Runs prepared jobs as one parallel region: their row units (4 rows, or an interleaved weight's group) laid end
    /// to end, cut into one share per thread by estimated cost, balanced at run time by `parallelShares`.
    static func runShares(_ fused: [FusedJob], pool: ComputePool) {
        // Cost of one row unit: weight bytes streamed (memory-bound decode) plus multiply-adds (compute-bound
        // prefill), in comparable units (~3 bytes of streaming per multiply-add of one token on this CPU class).
        let groupCost = fused.map { Double($0.unit * $0.cols) * (3 * Double($0.elementBytes) + Double($0.tokens)) }
        let groups = fused.map { ceilDiv($0.rows, $0.unit) }
        var firstUnit = [0]
        for g in groups { firstUnit.append(firstUnit.last! + g) }
        let total = zip(groupCost, groups).reduce(0.0) { $0 + $1.0 * Double($1.1) }
        let parts = pool.threads
        // Cut points: share p starts at the first unit whose cumulative cost reaches p/parts of the total.
        // Units of one job cost the same, so the unit is found by division, job by job (no walk over every unit).
        var cuts = [0]
        var acc = 0.0
        for (j, count) in groups.enumerated() {
            let jobCost = groupCost[j] * Double(count)
            while cuts.count < parts && acc + jobCost > total * Double(cuts.count) / Double(parts) {
                let g = max(0, Int(((total * Double(cuts.count) / Double(parts) - acc) / groupCost[j]).rounded(.up)))
                cuts.append(firstUnit[j] + min(g, count))
            }
            acc += jobCost
        }
        while cuts.count < parts + 1 { cuts.append(firstUnit.last!) }
        // Smallest claim ~64 KB of weights: a claim costs one kernel call (~0.1 µs), 64 KB streams in ~2 µs.
        let bytes = zip(fused, groups).reduce(0) { $0 + $1.0.unit * $1.0.cols * $1.0.elementBytes * $1.1 }
        let minClaim = max(1, firstUnit.last! * 65536 / max(bytes, 1))
        pool.parallelShares(cuts: cuts, minClaim: minClaim) { range in
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
