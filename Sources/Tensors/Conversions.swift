// Scalar bit conversions between storage formats (BF16, F16, FP8 e4m3/e5m2) and Float32.
// These are the reference definitions; vectorised kernels must agree with them bit for bit.

/// BF16 bits -> Float (exact: BF16 is the top half of an IEEE float).
@inlinable @inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float -> BF16 bits, round to nearest even; NaN stays a quiet NaN.
@inlinable @inline(__always)
public func floatToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
    let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

/// Round a Float to the nearest BF16 value and return it as Float.
@inlinable @inline(__always)
public func roundToBF16(_ value: Float) -> Float { bf16ToFloat(floatToBF16(value)) }

/// IEEE half bits -> Float.
@inlinable
public func f16ToFloat(_ bits: UInt16) -> Float {
    #if arch(arm64)
    return Float(Float16(bitPattern: bits))
    #else
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = Int((bits >> 10) & 0x1F)
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    #endif
}

/// Float8 e4m3fn (bias 7, no infinities, 0x7F/0xFF NaN) -> Float, per the OCP definition.
@inlinable
public func fp8E4M3ToFloat(_ byte: UInt8) -> Float {
    let negative = byte & 0x80 != 0
    let exponent = Int((byte >> 3) & 0x0F)
    let mantissa = Float(byte & 0x07)
    var value: Float
    if exponent == 0x0F && byte & 0x07 == 0x07 {
        return .nan
    } else if exponent == 0 {
        value = mantissa / 8 * 0x1p-6
    } else {
        value = (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }
    if negative { value = -value }
    return value
}

/// Float8 e5m2 (bias 15, IEEE-like with infinities) -> Float.
@inlinable
public func fp8E5M2ToFloat(_ byte: UInt8) -> Float {
    f16ToFloat(UInt16(byte) << 8)
}

/// Float -> nearest float8 e4m3fn (round to nearest even, saturating at +-448). Used by `synth`.
@inlinable
public func floatToFP8E4M3(_ value: Float) -> UInt8 {
    if value.isNaN { return 0x7F }
    let sign: UInt8 = value.sign == .minus ? 0x80 : 0
    let magnitude = Swift.min(Swift.abs(value), 448)
    if magnitude < 0x1p-6 {
        // Subnormal range: steps of 2^-9; a result of 8 is exactly the smallest normal (code 0x08).
        let q = (magnitude * 512).rounded(.toNearestOrEven)
        return sign | UInt8(q)
    }
    var exponent = Int(magnitude.exponent)
    var q = (magnitude * Float(sign: .plus, exponent: 3 - exponent, significand: 1)).rounded(.toNearestOrEven)
    if q >= 16 { exponent += 1; q = 8 }
    let code = Swift.min((exponent + 7) << 3 | (Int(q) - 8), 0x7E)
    return sign | UInt8(code)
}

/// Lookup tables for the 256 codes of each FP8 format (decode is a table load in hot loops).
public enum FP8Table {
    public static let e4m3: [Float] = (0..<256).map { fp8E4M3ToFloat(UInt8($0)) }
    public static let e5m2: [Float] = (0..<256).map { fp8E5M2ToFloat(UInt8($0)) }
}
