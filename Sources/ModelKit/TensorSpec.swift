// TensorSpec: one checkpoint tensor a model expects (name, shape, accepted dtypes, what it is for, its layer and
// expert), and the bytes it takes stored in BF16 or FP8 blocks. Families build their tables from these; the
// planner sums them per rank without knowing which family they came from.
import Tensors

/// What a tensor is for. The parallel planner assigns tensors to ranks by component, layer and expert.
public enum TensorComponent: String, Codable, CaseIterable, Sendable {
    case embedding, attention, denseFFN, sharedExpert, routedExpert, router, norm, head, mtp
}

/// One expected checkpoint tensor.
public struct TensorSpec: Sendable, Equatable, Codable {
    /// HF checkpoint name, e.g. `model.layers.3.mlp.experts.17.down_proj.weight`.
    public let name: String
    public let shape: [Int]
    /// Stored dtypes the runtime accepts for this tensor.
    public let dtypes: [DType]
    /// `.mtp` for every tensor of an MTP layer; otherwise equal to `role`.
    public let component: TensorComponent
    /// The tensor's function inside its layer (for MTP tensors: attention, routedExpert, ..., or mtp for the MTP-only glue).
    public let role: TensorComponent
    /// Decoder layer index (MTP layers continue after the main layers, e.g. 61).
    public let layer: Int?
    /// Routed expert index.
    public let expert: Int?
    /// A linear weight that may be stored as F8_E4M3 with a `weight_scale_inv` sibling.
    public let quantizable: Bool
    /// May be absent without harm (the MTP layer's copies of the embedding and lm_head).
    public let optional: Bool
    /// Split by its output rows across a tensor-parallel group (each rank holds its share); false: whole on every rank
    /// (or, for routed experts, placed by expert).
    public let splitsUnderTP: Bool

    public init(name: String, shape: [Int], dtypes: [DType], component: TensorComponent, role: TensorComponent, layer: Int?,
                expert: Int?, quantizable: Bool, optional: Bool, splitsUnderTP: Bool = false) {
        self.splitsUnderTP = splitsUnderTP
        self.name = name
        self.shape = shape
        self.dtypes = dtypes
        self.component = component
        self.role = role
        self.layer = layer
        self.expert = expert
        self.quantizable = quantizable
        self.optional = optional
    }

    public var parameterCount: Int { shape.reduce(1, *) }
    public var isMTP: Bool { component == .mtp }
    /// Name of the FP8 block-scale sibling.
    public var scaleName: String { name.hasSuffix(".weight") ? name + "_scale_inv" : name + ".weight_scale_inv" }
    /// Shape of the FP8 block-scale grid: one F32 per 128x128 block, partial edge blocks included (ceil).
    public var scaleShape: [Int] { shape.count == 2 ? [ceilDiv(shape[0], fp8BlockSize), ceilDiv(shape[1], fp8BlockSize)] : [] }
    /// Bytes with this tensor stored in BF16 (F32 for the correction bias, as checkpoints store it).
    public var bytesBF16: Int { parameterCount * (dtypes.first == .f32 ? 4 : 2) }
    /// Bytes in an FP8 block-quantized checkpoint: quantizable weights 1 byte + F32 scales; the rest as in BF16.
    public var bytesFP8: Int { quantizable ? parameterCount + scaleShape.reduce(1, *) * 4 : bytesBF16 }
}

extension TensorSpec {
    /// Parameters one token reads in this tensor: a routed expert's at `expertFraction` (top-k / experts), one row
    /// of the embedding table, everything else whole.
    public func activeParameters(expertFraction: Double) -> Int {
        switch role {
        case .routedExpert: return Int((Double(parameterCount) * expertFraction).rounded())
        case .embedding: return shape.last ?? 0
        default: return parameterCount
        }
    }
}
