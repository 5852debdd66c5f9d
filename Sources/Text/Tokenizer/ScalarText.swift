// Text decoded for the scanners: Unicode scalars (not graphemes), their class bits, and UTF-8 byte offsets.

/// Class bit constants mirroring CharClass, as plain integers for the scanners' hot loops.
enum CB {
    static let L: UInt16 = 1 << 0, M: UInt16 = 1 << 1, N: UInt16 = 1 << 2, P: UInt16 = 1 << 3, S: UInt16 = 1 << 4
    static let WS: UInt16 = 1 << 5, HAN: UInt16 = 1 << 6, KU: UInt16 = 1 << 7, KL: UInt16 = 1 << 8
    static let PY: UInt16 = 1 << 9, NUM: UInt16 = 1 << 10, W: UInt16 = 1 << 11
}

/// One decoded span of text. `offsets[i]` is the byte offset of scalar i in `bytes`; `offsets[count]` == bytes.count.
struct ScalarText {
    var bytes: [UInt8]
    var scalars: [UInt32]
    var classes: [UInt16]
    var offsets: [Int32]

    var count: Int { scalars.count }

    /// Decodes valid UTF-8 (it comes from a Swift String or from our own slicing of one).
    init(bytes: [UInt8]) {
        self.bytes = bytes
        var sc = [UInt32](), cl = [UInt16](), of = [Int32]()
        sc.reserveCapacity(bytes.count)
        cl.reserveCapacity(bytes.count)
        of.reserveCapacity(bytes.count + 1)
        let table = UnicodeClassTable.shared
        bytes.withUnsafeBufferPointer { b in
            var i = 0
            let n = b.count
            while i < n {
                let c0 = UInt32(b[i])
                of.append(Int32(i))
                if c0 < 0x80 {
                    sc.append(c0)
                    cl.append(asciiClass[Int(c0)])
                    i += 1
                    continue
                }
                var v: UInt32
                if c0 < 0xE0 {
                    v = (c0 & 0x1F) << 6 | (UInt32(b[i + 1]) & 0x3F)
                    i += 2
                } else if c0 < 0xF0 {
                    v = (c0 & 0x0F) << 12 | (UInt32(b[i + 1]) & 0x3F) << 6 | (UInt32(b[i + 2]) & 0x3F)
                    i += 3
                } else {
                    v = (c0 & 0x07) << 18 | (UInt32(b[i + 1]) & 0x3F) << 12 | (UInt32(b[i + 2]) & 0x3F) << 6
                        | (UInt32(b[i + 3]) & 0x3F)
                    i += 4
                }
                sc.append(v)
                cl.append(table.classOf(v).rawValue)
            }
            of.append(Int32(n))
        }
        scalars = sc
        classes = cl
        offsets = of
    }
}

/// Class bits of ASCII, precomputed so the common case skips the two-stage table.
let asciiClass: [UInt16] = (0..<128).map { UnicodeClassTable.shared.classOf(UInt32($0)).rawValue }
