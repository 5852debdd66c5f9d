// FamilyConfiguration: what every command needs from a decoded config.json, whatever the family: the model's shape,
// its tensor table, its limits, and how to load one rank's part of it. Each family's config type conforms; the
// registry in Models picks the type from `model_type`.
import Kernels
import Tensors

/// The part of the model one rank loads.
public struct ModelShard: Sendable {
    /// Decoder layers (default: all).
    public var layers: Range<Int>?
    /// Routed experts (default: all).
    public var experts: Set<Int>?
    /// Default: true for the first / last stage.
    public var includeEmbedding: Bool?
    public var includeHead: Bool?
    /// The lane's tensor-parallel group (one rank: everything whole).
    public var tp: any TensorParallelGroup

    public init(layers: Range<Int>? = nil, experts: Set<Int>? = nil, includeEmbedding: Bool? = nil, includeHead: Bool? = nil,
                tp: any TensorParallelGroup = SingleRank()) {
        self.tp = tp
        self.layers = layers
        self.experts = experts
        self.includeEmbedding = includeEmbedding
        self.includeHead = includeHead
    }
}

/// What a family does in words, for `inspect --compare` (the numbers come from the shape and the tensor table).
public struct ArchitectureFacts: Sendable, Codable, Equatable {
    /// e.g. "MLA, 128 heads, latent 512 + rope 64" or "GQA 64 q / 4 kv, head 128".
    public var attention: String
    /// e.g. "sigmoid + bias, 8 groups top 4, x2.5" or "softmax top-8, renormalised".
    public var router: String
    /// Norm placement and extra norms, e.g. "pre-norm RMSNorm; per-head QK-norm".
    public var norms: String
    /// e.g. "RoPE interleaved on 64 dims, YaRN x40, θ 10000".
    public var positions: String

    public init(attention: String, router: String, norms: String, positions: String) {
        self.attention = attention
        self.router = router
        self.norms = norms
        self.positions = positions
    }
}

public protocol FamilyConfiguration: Sendable {
    /// The config's `model_type`.
    var modelType: String { get }
    var shape: ModelShape { get }
    var vocabSize: Int { get }
    var maxPositionEmbeddings: Int { get }
    /// The checkpoint declares FP8 128x128 block quantization (`quantization_config`).
    var isFP8: Bool { get }
    /// End-of-sequence ids from config.json (the tokenizer's win when present).
    var eosIDs: [Int] { get }
    /// The main model's checkpoint tensors (MTP layers excluded): the names the loader asks for.
    var mainTensorSpecs: [TensorSpec] { get }
    var facts: ArchitectureFacts { get }
    /// Throws a `ConfigError`-style error naming the field when the values are inconsistent or unsupported.
    func validate() throws
    /// Loads `shard` of the model from `source` (HF names). `weightLayout: .interleaved` copies product weights into
    /// the decode kernels' order; `progress` gets (layers done, layers) with the head as the last step.
    func loadModel(source: any TensorSource, shard: ModelShard, dispatcher: (any ExpertDispatcher)?, pool: ComputePool,
                   weightLayout: WeightLayout, progress: ((Int, Int) -> Void)?) throws -> DecoderModel
}
