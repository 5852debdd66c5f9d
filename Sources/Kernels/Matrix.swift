// Matrix: a dense row-major FP32 activation buffer [rows, cols] (tokens x features).
// Activations are always FP32 (docs/architecture.md §4); weights are `Weight` views.

/// Row-major FP32 matrix `[rows, cols]`; row `t` is token `t` in activation buffers.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var data: [Float]

    /// A zero matrix.
    public init(rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape")
        self.rows = rows
        self.cols = cols
        self.data = [Float](repeating: 0, count: rows * cols)
    }

    /// A matrix whose every element `fill` initializes, through the pointer to its `rows * cols` uninitialized
    /// elements: no zero-fill first, for buffers a gather overwrites whole.
    @inlinable
    public init(rows: Int, cols: Int, filling fill: (UnsafeMutablePointer<Float>) -> Void) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape")
        self.rows = rows
        self.cols = cols
        self.data = [Float](unsafeUninitializedCapacity: rows * cols) { buffer, count in
            if let base = buffer.baseAddress { fill(base) }
            count = rows * cols
        }
    }

    /// A matrix over `data` (count must be rows * cols).
    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "data count \(data.count) != \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    @inlinable
    public subscript(row: Int, col: Int) -> Float {
        get { data[row * cols + col] }
        set { data[row * cols + col] = newValue }
    }

    /// A copy of one row.
    public func row(_ r: Int) -> [Float] { Array(data[(r * cols)..<((r + 1) * cols)]) }

    /// Overwrite one row.
    public mutating func setRow(_ r: Int, _ values: [Float]) {
        precondition(values.count == cols, "row width \(values.count) != \(cols)")
        data.replaceSubrange((r * cols)..<((r + 1) * cols), with: values)
    }

    /// Rows `range` as a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, data: Array(data[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    /// Columns `range` of every row as a new matrix.
    public func columns(_ range: Range<Int>) -> Matrix {
        var out = Matrix(rows: rows, cols: range.count)
        for r in 0..<rows {
            for (j, c) in range.enumerated() { out.data[r * range.count + j] = data[r * cols + c] }
        }
        return out
    }

    /// Whether both matrices have this shape and one storage (copies that were never written): the same values.
    public func sharesStorage(with other: Matrix) -> Bool {
        rows == other.rows && cols == other.cols
            && data.withUnsafeBufferPointer { a in other.data.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
    }

    /// Selected rows (in the given order) as a new matrix.
    public func gatherRows(_ indices: [Int]) -> Matrix {
        indices.withUnsafeBufferPointer { gatherRows($0) }
    }

    /// `gatherRows` with the indices in caller storage.
    public func gatherRows(_ indices: UnsafeBufferPointer<Int>) -> Matrix {
        // Every row in order (a decode token routed to an expert): the same matrix, no copy (copy-on-write storage).
        if indices.count == rows && indices.elementsEqual(0..<rows) { return self }
        let n = cols
        return data.withUnsafeBufferPointer { src in
            Matrix(rows: indices.count, cols: n) { dst in
                for (i, r) in indices.enumerated() { (dst + i * n).initialize(from: src.baseAddress! + r * n, count: n) }
            }
        }
    }

    /// Row-wise concatenation.
    public static func concatRows(_ parts: [Matrix], cols: Int) -> Matrix {
        var data: [Float] = []
        data.reserveCapacity(parts.reduce(0) { $0 + $1.data.count })
        for p in parts {
            precondition(p.cols == cols, "column mismatch in concatRows")
            data.append(contentsOf: p.data)
        }
        return Matrix(rows: data.count / max(cols, 1), cols: cols, data: data)
    }

    /// Largest absolute elementwise difference (shapes must match).
    public func maxAbsDiff(_ other: Matrix) -> Float {
        precondition(rows == other.rows && cols == other.cols, "shape mismatch")
        var m: Float = 0
        for i in data.indices { m = Swift.max(m, Swift.abs(data[i] - other.data[i])) }
        return m
    }

    /// Bitwise equality of every element (distinguishes -0 / +0 and NaN payloads).
    public func bitwiseEqual(_ other: Matrix) -> Bool {
        rows == other.rows && cols == other.cols
            && zip(data, other.data).allSatisfy { $0.bitPattern == $1.bitPattern }
    }
}

/// Wraps a value that is not `Sendable` (raw pointers) for use across the compute pool's threads.
/// Safe only because each thread writes a disjoint part of the memory.
public struct UnsafeTransfer<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
