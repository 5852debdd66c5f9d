// GPT-2's byte <-> printable-character map (huggingface/tokenizers pre_tokenizers/byte_level.rs bytes_char).

enum ByteLevelMap {
    /// byteToChar[b]: the scalar that stands for byte b in byte-level vocabularies.
    static let byteToChar: [UInt32] = {
        var bs: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var cs = bs.map { UInt32($0) }
        var n: UInt32 = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var table = [UInt32](repeating: 0, count: 256)
        for (b, c) in zip(bs, cs) { table[b] = c }
        return table
    }()

    static let charToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { m[c] = UInt8(b) }
        return m
    }()

    /// The raw bytes of a byte-level token string, or nil when a character is outside the map.
    static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for u in token.unicodeScalars {
            guard let b = charToByte[u.value] else { return nil }
            out.append(b)
        }
        return out
    }

    /// What the ByteLevel decoder turns one token into: mapped bytes, or the token's own UTF-8 when any
    /// character is outside the map (decoders `ByteLevel::decode_chain`).
    static func decoderBytes(_ token: String) -> [UInt8] { decode(token) ?? Array(token.utf8) }

    static func encode(_ bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToChar[Int(b)])!) }
        return String(s)
    }
}
