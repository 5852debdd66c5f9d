// Normalizers: Unicode NF(K)C/D, Lowercase and Sequence over UTF-8 text, as huggingface/tokenizers normalizers/*.
import Foundation

/// A supported tokenizer.json normalizer.
indirect enum NormalizerSpec: Sendable, Equatable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case sequence([NormalizerSpec])

    static let supportedTypes = "NFC, NFD, NFKC, NFKD, Lowercase, Sequence"

    /// An empty Sequence normalizes nothing; flattening lets the encoder skip it.
    var isIdentity: Bool {
        if case .sequence(let s) = self { return s.allSatisfy(\.isIdentity) }
        return false
    }

    func apply(_ text: String) -> String {
        switch self {
        // swift-corelibs-foundation's mappings follow the Unicode algorithms (checked in TokenizerComponentTests).
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase:
            // Per scalar, full mapping, no context (Rust's char::to_lowercase): 'Σ' is always 'σ'.
            var out = String.UnicodeScalarView()
            for u in text.unicodeScalars {
                if u.isASCII {
                    out.append(u.value >= 0x41 && u.value <= 0x5A ? Unicode.Scalar(u.value + 0x20)! : u)
                } else {
                    out.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars)
                }
            }
            return String(out)
        case .sequence(let steps):
            return steps.reduce(text) { $1.apply($0) }
        }
    }
}
