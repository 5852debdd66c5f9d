// Tests for the scalar storage-format conversions (the reference every kernel is compared against).
import Testing
@testable import Tensors

@Test func bf16RoundTripAndRounding() {
    #expect(bf16ToFloat(floatToBF16(1.0)) == 1.0)
    #expect(bf16ToFloat(floatToBF16(-2.5)) == -2.5)
    // 1 + 2^-8 is halfway between two BF16 values: ties go to even (1.0).
    #expect(roundToBF16(1 + 0x1p-8) == 1.0)
    #expect(roundToBF16(1 + 0x1p-8 + 0x1p-12) == 1 + 0x1p-7)
    #expect(bf16ToFloat(floatToBF16(.nan)).isNaN)
}

@Test func fp8E4M3DecodesEveryCodePerSpec() {
    for code in 0..<256 {
        let byte = UInt8(code)
        let s: Float = byte & 0x80 != 0 ? -1 : 1
        let e = Int((byte >> 3) & 0xF), m = Float(byte & 7)
        let value = fp8E4M3ToFloat(byte)
        if e == 15 && byte & 7 == 7 { #expect(value.isNaN); continue }
        let expected: Float = e == 0 ? s * m / 8 * 0x1p-6 : s * (1 + m / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
        #expect(value == expected, "code \(code)")
    }
    #expect(fp8E4M3ToFloat(0x7E) == 448)
}

@Test func fp8EncodeIsNearestAndRoundTrips() {
    for code in 0..<256 where code & 0x7F != 0x7F {
        let v = fp8E4M3ToFloat(UInt8(code))
        let back = floatToFP8E4M3(v)
        #expect(fp8E4M3ToFloat(back) == v, "code \(code)")
    }
    #expect(floatToFP8E4M3(1000) == 0x7E)
    #expect(floatToFP8E4M3(-1000) == 0xFE)
    // 1.0625 is halfway between 1.0 (code 0x38) and 1.125 (0x39): ties to even -> 1.0.
    #expect(fp8E4M3ToFloat(floatToFP8E4M3(1.0625)) == 1.0)
}

@Test func f16Decodes() {
    #expect(f16ToFloat(0x3C00) == 1.0)
    #expect(f16ToFloat(0xC000) == -2.0)
    #expect(f16ToFloat(0x0001) == 0x1p-24)
    #expect(f16ToFloat(0x7C00) == .infinity)
}

@Test func fp8WeightDequantizesWithPartialEdgeBlocks() {
    // 130 x 200: scale grid 2 x 2 with partial edge blocks (2 rows / 72 cols).
    let rows = 130, cols = 200
    let values = (0..<(rows * cols)).map { Float(($0 * 37) % 101 - 50) / 17 }
    let w = Weight.fp8(rows: rows, cols: cols, values)
    #expect(w.scaleCols == 2)
    guard case .fp8e4m3(let codes, let scales) = w.storage else { Issue.record("not fp8"); return }
    for r in [0, 127, 128, 129] {
        for c in [0, 127, 128, 199] {
            let expected = fp8E4M3ToFloat(codes[r * cols + c]) * scales[(r / 128) * 2 + c / 128]
            #expect(w.element(r, c) == expected)
            #expect(abs(w.element(r, c) - values[r * cols + c]) <= abs(values[r * cols + c]) / 16 + 1e-6)
        }
    }
}
