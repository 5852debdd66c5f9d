// Weight: a read-only 2-D view [rows, cols] over weights kept in their checkpoint dtype
// (F32, BF16, F16, or FP8 e4m3 with 128x128 block scales), row-major or in interleaved row groups (the decode
// kernels' read order). Memory is owned elsewhere (mmap or heap); `owner` keeps it alive. Kernels dequantize on the
// fly; nothing here expands to FP32.

/// Block edge of FP8 block quantization (DeepSeek-V3 / Kimi K2 `weight_block_size`).
public let fp8BlockSize = 128

/// Ceil division, used for scale-grid shapes (partial edge blocks count as whole blocks).
@inlinable public func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }

/// Read-only storage of a weight matrix in one of the supported element formats.
public enum WeightStorage: @unchecked Sendable {
    case f32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)
    case f16(UnsafePointer<UInt16>)
    /// e4m3 codes row-major [rows, cols]; scales row-major [ceil(rows/128), ceil(cols/128)], multipliers.
    case fp8e4m3(UnsafePointer<UInt8>, scales: UnsafePointer<Float>)
}

/// How the model stores its projection weights in memory.
public enum WeightLayout: String, Sendable, CaseIterable {
    /// As in the checkpoint (row-major, mapped: no copy).
    case checkpoint
    /// Copied into interleaved row groups, the decode kernels' read order (`Weight.interleaved`).
    case interleaved
}

/// Owners of mapped memory that can drop pages from this process once a copy replaced them (the file keeps them).
public protocol PageReleasing: AnyObject {
    /// Drops the whole pages inside [p, p + bytes) from this process's mapping; later reads fault them back in.
    func releasePages(_ p: UnsafeRawPointer, _ bytes: Int)
}

/// Columns per interleaved chunk (the linear kernels' 64-column chunk).
public let interleaveChunk = 64

/// A 2-D weight view [rows, cols] (PyTorch `[out, in]` convention: y = x W^T).
///
/// Layout: row-major, or (`group` > 0) rows [0, packedRows) stored in groups of `group` rows whose 64-column chunks
/// are interleaved: chunk c of row g·group + j sits at element g·group·cols + (c·group + j)·64, so one decode block
/// (a group's rows, chunk by chunk) reads one ascending run; the last rows % group rows stay row-major.
public struct Weight: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let storage: WeightStorage
    /// Rows per interleaved group; 0 = row-major.
    public let group: Int
    /// Keeps the underlying memory (mapped file or heap block) alive as long as the view exists.
    public let owner: AnyObject?

    public init(rows: Int, cols: Int, storage: WeightStorage, group: Int = 0, owner: AnyObject?) {
        precondition(group == 0 || (group % 4 == 0 && cols % interleaveChunk == 0), "interleaved groups need group % 4 == 0 and cols % 64 == 0")
        self.rows = rows
        self.cols = cols
        self.storage = storage
        self.group = group
        self.owner = owner
    }

    /// Rows stored in interleaved groups (0 when row-major).
    public var packedRows: Int { group > 0 ? rows / group * group : 0 }

    /// Element index of (row, col) in the storage.
    @inlinable
    public func offset(_ row: Int, _ col: Int) -> Int {
        Weight.offset(row: row, col: col, cols: cols, group: group, packedRows: packedRows)
    }

    /// `offset` from the layout fields alone (kernels keep them instead of the weight).
    @inlinable @inline(__always)
    public static func offset(row: Int, col: Int, cols: Int, group: Int, packedRows: Int) -> Int {
        if row < packedRows {
            let j = row % group
            return (row - j) * cols + ((col / interleaveChunk) * group + j) * interleaveChunk + col % interleaveChunk
        }
        return row * cols + col
    }

    public var dtype: DType {
        switch storage {
        case .f32: return .f32
        case .bf16: return .bf16
        case .f16: return .f16
        case .fp8e4m3: return .f8e4m3
        }
    }

    /// Columns of the FP8 scale grid.
    public var scaleCols: Int { ceilDiv(cols, fp8BlockSize) }

    /// Bytes the weight occupies in memory, including block scales.
    public var byteCount: Int {
        let body = rows * cols * dtype.byteWidth
        if case .fp8e4m3 = storage { return body + ceilDiv(rows, fp8BlockSize) * scaleCols * 4 }
        return body
    }

    /// Start and length of the element bytes (scales excluded), e.g. to prefetch mapped pages.
    public var storageBytes: (UnsafeRawPointer, Int) {
        switch storage {
        case .f32(let p): return (UnsafeRawPointer(p), rows * cols * 4)
        case .bf16(let p): return (UnsafeRawPointer(p), rows * cols * 2)
        case .f16(let p): return (UnsafeRawPointer(p), rows * cols * 2)
        case .fp8e4m3(let p, _): return (UnsafeRawPointer(p), rows * cols)
        }
    }

    /// Reference element access (slow; for tests and reference kernels).
    @inlinable
    public func element(_ row: Int, _ col: Int) -> Float {
        let index = offset(row, col)
        switch storage {
        case .f32(let p): return p[index]
        case .bf16(let p): return bf16ToFloat(p[index])
        case .f16(let p): return f16ToFloat(p[index])
        case .fp8e4m3(let p, let scales):
            let scale = scales[(row / fp8BlockSize) * ceilDiv(cols, fp8BlockSize) + col / fp8BlockSize]
            return FP8Table.e4m3[Int(p[index])] * scale
        }
    }

    /// Reference dequantization of one row into `out` (count = cols).
    public func dequantizeRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        for c in 0..<cols { out[c] = element(row, c) }
    }

    /// A contiguous range of rows as its own view (used to split fused projections, e.g. kv_b_proj per head).
    /// For FP8 the row range must start on a block boundary so scale rows stay aligned; an interleaved weight's
    /// range must cover whole groups (or end at the last row).
    public func rows(_ range: Range<Int>) -> Weight {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range out of bounds")
        precondition(group == 0 || (range.lowerBound % group == 0 && (range.upperBound % group == 0 || range.upperBound == rows)),
                     "a row slice of an interleaved weight must cover whole groups of \(group) rows")
        let offset = range.lowerBound * cols
        let newStorage: WeightStorage
        switch storage {
        case .f32(let p): newStorage = .f32(p + offset)
        case .bf16(let p): newStorage = .bf16(p + offset)
        case .f16(let p): newStorage = .f16(p + offset)
        case .fp8e4m3(let p, let scales):
            precondition(range.lowerBound % fp8BlockSize == 0, "FP8 row slice must start on a 128-row block boundary")
            newStorage = .fp8e4m3(p + offset, scales: scales + (range.lowerBound / fp8BlockSize) * scaleCols)
        }
        return Weight(rows: range.count, cols: cols, storage: newStorage, group: group, owner: owner)
    }

    /// A copy of this weight in interleaved groups of `group` rows (see the type's layout note), or self when the
    /// layout does not apply (F32 / F16, columns not a multiple of 64, fewer rows than a group, already interleaved).
    /// Same dtype and scales (the scales stay where they are, kept alive with the source). The copy lives in huge-page
    /// regions (`PageArena.weights`); a mapped source's pages are released from this process (`PageReleasing`).
    public func interleaved(group g: Int, copy: InterleaveCopy = Weight.interleaveCopy) -> Weight {
        guard group == 0, g >= 4, g % 4 == 0, cols % interleaveChunk == 0, rows >= g else { return self }
        let width: Int
        switch storage {
        case .bf16: width = 2
        case .fp8e4m3: width = 1
        case .f32, .f16: return self
        }
        let (src, bytes) = storageBytes
        let (dst, block) = PageArena.weights.allocate(byteCount: bytes)
        copy(dst, src, rows, cols * width, interleaveChunk * width, g)
        // A mapped source is no longer read (the copy replaces it): keep it out of this process's resident memory.
        (owner as? PageReleasing)?.releasePages(src, bytes)
        let keep = KeepAlive(block, owner)
        switch storage {
        case .bf16: return Weight(rows: rows, cols: cols, storage: .bf16(UnsafePointer(dst.assumingMemoryBound(to: UInt16.self))), group: g, owner: keep)
        case .fp8e4m3(_, let scales):
            return Weight(rows: rows, cols: cols, storage: .fp8e4m3(UnsafePointer(dst.assumingMemoryBound(to: UInt8.self)), scales: scales),
                          group: g, owner: keep)
        case .f32, .f16: return self
        }
    }
}

/// Copies row-major `[rows, rowBytes]` bytes at `src` into interleaved groups at `dst`:
/// (dst, src, rows, rowBytes, chunkBytes, group).
public typealias InterleaveCopy = @Sendable (UnsafeMutableRawPointer, UnsafeRawPointer, Int, Int, Int, Int) -> Void

extension Weight {
    /// The reference copy into interleaved groups (Kernels passes a C twin that is faster on multi-GB shards).
    public static let interleaveCopy: InterleaveCopy = { dst, src, rows, rowBytes, chunkBytes, g in
        let packed = rows / g * g, chunks = rowBytes / chunkBytes
        var d = dst
        for r0 in stride(from: 0, to: packed, by: g) {
            for c in 0..<chunks {
                for j in 0..<g {
                    d.copyMemory(from: src + (r0 + j) * rowBytes + c * chunkBytes, byteCount: chunkBytes)
                    d += chunkBytes
                }
            }
        }
        d.copyMemory(from: src + packed * rowBytes, byteCount: (rows - packed) * rowBytes)
    }
}

/// Keeps two owners of one weight alive together (weight and scale mappings, possibly different shards; or an
/// interleaved copy and the source still holding its FP8 scales). Page releases go to the first (the weight bytes).
public final class KeepAlive: PageReleasing, @unchecked Sendable {
    public let first: AnyObject
    public let second: AnyObject?
    public init(_ first: AnyObject, _ second: AnyObject?) {
        self.first = first
        self.second = second
    }
    public func releasePages(_ p: UnsafeRawPointer, _ bytes: Int) { (first as? PageReleasing)?.releasePages(p, bytes) }
}

/// Heap memory with a stable address, used as the owner of weights that do not come from a mapped file.
public final class HeapBlock: @unchecked Sendable {
    public let raw: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int, alignment: Int = 64) {
        self.byteCount = byteCount
        self.raw = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: alignment)
    }

    deinit { raw.deallocate() }
}

extension Weight {
    /// An owned F32 weight built from values (tests, derived matrices).
    public static func f32(rows: Int, cols: Int, _ values: [Float]) -> Weight {
        precondition(values.count == rows * cols, "value count \(values.count) != \(rows)x\(cols)")
        let block = HeapBlock(byteCount: values.count * 4)
        let p = block.raw.bindMemory(to: Float.self, capacity: values.count)
        for i in values.indices { p[i] = values[i] }
        return Weight(rows: rows, cols: cols, storage: .f32(UnsafePointer(p)), owner: block)
    }

    /// An owned BF16 weight rounded from values.
    public static func bf16(rows: Int, cols: Int, _ values: [Float]) -> Weight {
        precondition(values.count == rows * cols, "value count \(values.count) != \(rows)x\(cols)")
        let block = HeapBlock(byteCount: values.count * 2)
        let p = block.raw.bindMemory(to: UInt16.self, capacity: values.count)
        for i in values.indices { p[i] = floatToBF16(values[i]) }
        return Weight(rows: rows, cols: cols, storage: .bf16(UnsafePointer(p)), owner: block)
    }

    /// An owned FP8 e4m3 weight quantized from values with the 128x128 block recipe
    /// (scale = amax/448 per block, zero blocks get scale 1).
    public static func fp8(rows: Int, cols: Int, _ values: [Float]) -> Weight {
        precondition(values.count == rows * cols, "value count \(values.count) != \(rows)x\(cols)")
        let gridRows = ceilDiv(rows, fp8BlockSize), gridCols = ceilDiv(cols, fp8BlockSize)
        let block = HeapBlock(byteCount: values.count + gridRows * gridCols * 4 + 64)
        let codes = block.raw.bindMemory(to: UInt8.self, capacity: values.count)
        let scaleBase = (block.raw + ((values.count + 63) / 64) * 64).bindMemory(to: Float.self, capacity: gridRows * gridCols)
        for br in 0..<gridRows {
            for bc in 0..<gridCols {
                var amax: Float = 0
                for r in (br * fp8BlockSize)..<min(rows, (br + 1) * fp8BlockSize) {
                    for c in (bc * fp8BlockSize)..<min(cols, (bc + 1) * fp8BlockSize) {
                        amax = max(amax, abs(values[r * cols + c]))
                    }
                }
                let scale: Float = amax > 0 ? amax / 448 : 1
                scaleBase[br * gridCols + bc] = scale
                for r in (br * fp8BlockSize)..<min(rows, (br + 1) * fp8BlockSize) {
                    for c in (bc * fp8BlockSize)..<min(cols, (bc + 1) * fp8BlockSize) {
                        codes[r * cols + c] = floatToFP8E4M3(values[r * cols + c] / scale)
                    }
                }
            }
        }
        return Weight(rows: rows, cols: cols,
                      storage: .fp8e4m3(UnsafePointer(codes), scales: UnsafePointer(scaleBase)), owner: block)
    }
}
