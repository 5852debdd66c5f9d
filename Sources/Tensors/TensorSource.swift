// TensorSource: the seam between weight storage (Checkpoint, synthetic tests) and model code (Models).
// Model code asks by HF checkpoint name; the source decides where the bytes live.

/// Something that hands out tensors by their HF checkpoint name.
public protocol TensorSource: Sendable {
    /// A 2-D weight `[out, in]` in its stored dtype. For FP8 tensors the source pairs `X.weight`
    /// with its `X.weight_scale_inv` sibling.
    func weight(_ name: String) throws -> Weight
    /// A 1-D tensor (norm weights, correction biases) converted to Float.
    func vector(_ name: String) throws -> [Float]
    /// Whether the source holds a tensor of this name.
    func contains(_ name: String) -> Bool
}

/// An in-memory source (tests, derived models).
public struct InMemoryTensorSource: TensorSource {
    public var weights: [String: Weight]
    public var vectors: [String: [Float]]

    public init(weights: [String: Weight] = [:], vectors: [String: [Float]] = [:]) {
        self.weights = weights
        self.vectors = vectors
    }

    public func weight(_ name: String) throws -> Weight {
        guard let w = weights[name] else { throw MissingTensor(name: name) }
        return w
    }

    public func vector(_ name: String) throws -> [Float] {
        guard let v = vectors[name] else { throw MissingTensor(name: name) }
        return v
    }

    public func contains(_ name: String) -> Bool { weights[name] != nil || vectors[name] != nil }
}

/// Thrown by in-memory sources for an absent name.
public struct MissingTensor: Error, CustomStringConvertible {
    public let name: String
    public var description: String { "tensor '\(name)' is not present in this source" }
}
