// Chunk decoders of the portable linear kernels: how one 64-column chunk of an F32 / BF16 / F16 / FP8 weight row
// becomes four 16-lane phases (the fixed lane layout of the summation contract in Linear.swift), and the row layout
// (row-major or interleaved groups) the decoders address.
import Foundation
import Tensors

public typealias Vec16 = SIMD16<Float>

/// Columns per decode chunk (a multiple of 16 that divides the FP8 block edge 128).
public let linearChunk = 64

/// Where row `row`'s chunk `chunk` starts in a weight's storage (elements): row-major or interleaved groups
/// (`Weight.offset`).
struct RowLayout {
    let cols: Int, group: Int, packedRows: Int
    init(_ w: Weight) { cols = w.cols; group = w.group; packedRows = w.packedRows }
    @inline(__always)
    func chunkStart(row: Int, chunk: Int) -> Int {
        Weight.offset(row: row, col: chunk * linearChunk, cols: cols, group: group, packedRows: packedRows)
    }
}

/// Four 16-lane vectors: a decoded 64-column chunk of one row, or the matching activations.
typealias Phases = (Vec16, Vec16, Vec16, Vec16)

/// Decodes 64-column chunks of weight rows into four Vec16 "phases". `column(phase:lane:)` gives the
/// column (inside the chunk) that lane `lane` of phase `phase` holds; activations are packed the same way.
/// `accumulate` adds one decoded chunk's products with the packed activations to an accumulator.
protocol ChunkDecoder {
    associatedtype Chunk
    func decode(row: Int, chunk: Int) -> Chunk
    func decodeTail(row: Int, chunk: Int, valid: Int) -> Chunk
    static func column(phase: Int, lane: Int) -> Int
    static func accumulate(_ acc: inout Vec16, _ w: Chunk, _ x: Phases)
}

extension ChunkDecoder where Chunk == Phases {
    /// Plain weights: four fused multiply-adds in phase order.
    @inline(__always)
    static func accumulate(_ acc: inout Vec16, _ w: Phases, _ x: Phases) { fmaChunk(&acc, w, x) }
}

/// 16-bit formats (BF16, F16) read as pairs in 32-bit words: only `split` (64 halves -> four vectors) differs.
protocol HalfPairDecoder: ChunkDecoder {
    var base: UnsafePointer<UInt16> { get }
    var layout: RowLayout { get }
    static func split(_ p: UnsafeRawPointer) -> Phases
}

extension HalfPairDecoder {
    @inline(__always)
    func decode(row: Int, chunk: Int) -> Phases {
        Self.split(UnsafeRawPointer(base + layout.chunkStart(row: row, chunk: chunk)))
    }
    @inline(__always)
    func decodeTail(row: Int, chunk: Int, valid: Int) -> Phases {
        var tmp = (SIMD16<UInt32>(), SIMD16<UInt32>())
        let src = base + layout.chunkStart(row: row, chunk: chunk)
        return withUnsafeMutableBytes(of: &tmp) { raw in
            let dst = raw.baseAddress!.assumingMemoryBound(to: UInt16.self)
            for i in 0..<valid { dst[i] = src[i] }
            return Self.split(UnsafeRawPointer(raw.baseAddress!))
        }
    }
    @inline(__always) static func column(phase: Int, lane: Int) -> Int { (phase / 2) * 32 + 2 * lane + (phase & 1) }
}

@inline(__always)
func asFloat(_ v: SIMD16<UInt32>) -> Vec16 { unsafeBitCast(v, to: Vec16.self) }
@inline(__always)
func asBits(_ v: Vec16) -> SIMD16<UInt32> { unsafeBitCast(v, to: SIMD16<UInt32>.self) }

struct F32Decoder: ChunkDecoder {
    let base: UnsafePointer<Float>
    let layout: RowLayout
    @inline(__always)
    func decode(row: Int, chunk: Int) -> Phases {
        let p = UnsafeRawPointer(base + layout.chunkStart(row: row, chunk: chunk))
        return (p.loadUnaligned(as: Vec16.self), p.loadUnaligned(fromByteOffset: 64, as: Vec16.self),
                p.loadUnaligned(fromByteOffset: 128, as: Vec16.self), p.loadUnaligned(fromByteOffset: 192, as: Vec16.self))
    }
    @inline(__always)
    func decodeTail(row: Int, chunk: Int, valid: Int) -> Phases {
        var tmp = (Vec16(), Vec16(), Vec16(), Vec16())
        let src = base + layout.chunkStart(row: row, chunk: chunk)
        withUnsafeMutableBytes(of: &tmp) { raw in
            let dst = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for i in 0..<valid { dst[i] = src[i] }
        }
        return tmp
    }
    @inline(__always) static func column(phase: Int, lane: Int) -> Int { phase * 16 + lane }
}

/// BF16: a 32-column half-chunk is one SIMD16<UInt32> load of pairs; `<< 16` is the even element,
/// `& 0xFFFF0000` the odd one. Phases: even(0..31), odd(0..31), even(32..63), odd(32..63).
struct BF16Decoder: HalfPairDecoder {
    let base: UnsafePointer<UInt16>
    let layout: RowLayout
    @inline(__always)
    static func split(_ p: UnsafeRawPointer) -> Phases {
        let w0 = p.loadUnaligned(as: SIMD16<UInt32>.self)
        let w1 = p.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self)
        return (asFloat(w0 &<< 16), asFloat(w0 & 0xFFFF_0000), asFloat(w1 &<< 16), asFloat(w1 & 0xFFFF_0000))
    }
}

/// F16: same pair layout as BF16; each half converted exactly with the rebias-by-multiply trick.
struct F16Decoder: HalfPairDecoder {
    let base: UnsafePointer<UInt16>
    let layout: RowLayout
    @inline(__always)
    static func convert(_ h: SIMD16<UInt32>) -> Vec16 {
        let sign = (h & 0x8000) &<< 16
        let em = h & 0x7FFF
        var bits = asBits(asFloat(em &<< 13) * Vec16(repeating: 0x1p112))
        bits.replace(with: (em &<< 13) | 0x7F80_0000, where: em .>= 0x7C00)
        return asFloat(bits | sign)
    }
    @inline(__always)
    static func split(_ p: UnsafeRawPointer) -> Phases {
        let w0 = p.loadUnaligned(as: SIMD16<UInt32>.self)
        let w1 = p.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self)
        return (convert(w0 & 0xFFFF), convert(w0 &>> 16), convert(w1 & 0xFFFF), convert(w1 &>> 16))
    }
}

/// FP8 e4m3 with 128x128 block scales: 64 codes are one SIMD16<UInt32> load; byte k of each word is phase k.
/// Decoding: shift byte k to the top of the lane, arithmetic-shift right by 4 and mask 0x87F0_0000: the sign lands
/// in bit 31 and the 7 magnitude bits in float bits 20..26, i.e. the float m = (e4m3 value) · 2^-120, exact
/// (subnormal codes included). No per-element scale multiply: per chunk the four products m · x' are summed
/// (a multiply, then three fused multiply-adds) and that partial sum enters the accumulator with one fused
/// multiply-add by s' = scale · 2^56. The activations are packed pre-multiplied by 2^64 (`fp8ActivationScale`),
/// so m · x' = e4m3 · x · 2^-56 stays a normal float, and x' · s' = x · scale · 2^120. Powers of two are exact:
/// with one non-zero input the output is exactly fl(e4m3 · scale) (`Weight.element`). Scales must be below 2^64
/// (checkpoint loading rejects larger ones; the amax/448 recipe gives < 1). The NaN codes 0x7F / 0xFF are not
/// special-cased.
struct FP8Decoder: ChunkDecoder {
    let base: UnsafePointer<UInt8>
    let scales: UnsafePointer<Float>
    let layout: RowLayout
    let scaleCols: Int
    /// Decoded magnitudes of the four phases and the chunk's folded scale s'.
    typealias Chunk = (Phases, Float)
    @inline(__always)
    static func magnitude(_ top: SIMD16<UInt32>) -> Vec16 {
        let shifted = unsafeBitCast(unsafeBitCast(top, to: SIMD16<Int32>.self) &>> 4, to: SIMD16<UInt32>.self)
        return asFloat(shifted & 0x87F0_0000)
    }
    @inline(__always)
    func split(_ p: UnsafeRawPointer, row: Int, chunk: Int) -> Chunk {
        let w = p.loadUnaligned(as: SIMD16<UInt32>.self)
        let scale = scales[(row / fp8BlockSize) * scaleCols + (chunk * linearChunk) / fp8BlockSize]
        return ((Self.magnitude(w &<< 24), Self.magnitude(w &<< 16), Self.magnitude(w &<< 8), Self.magnitude(w)),
                scale * fp8ScaleFold)
    }
    @inline(__always)
    func decode(row: Int, chunk: Int) -> Chunk {
        split(UnsafeRawPointer(base + layout.chunkStart(row: row, chunk: chunk)), row: row, chunk: chunk)
    }
    @inline(__always)
    func decodeTail(row: Int, chunk: Int, valid: Int) -> Chunk {
        var tmp = SIMD16<UInt32>()
        let src = base + layout.chunkStart(row: row, chunk: chunk)
        return withUnsafeMutableBytes(of: &tmp) { raw in
            let dst = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for i in 0..<valid { dst[i] = src[i] }
            return split(UnsafeRawPointer(raw.baseAddress!), row: row, chunk: chunk)
        }
    }
    @inline(__always) static func column(phase: Int, lane: Int) -> Int { 4 * lane + phase }
    @inline(__always)
    static func accumulate(_ acc: inout Vec16, _ w: Chunk, _ x: Phases) {
        var part = w.0.0 * x.0
        part.addProduct(w.0.1, x.1)
        part.addProduct(w.0.2, x.2)
        part.addProduct(w.0.3, x.3)
        acc.addProduct(part, Vec16(repeating: w.1))
    }
}

/// FP8 activations are packed times 2^64 and block scales folded times 2^56 (see FP8Decoder): 2^64 · 2^56 · 2^-120 = 1.
let fp8ActivationScale: Float = 0x1p64
let fp8ScaleFold: Float = 0x1p56
