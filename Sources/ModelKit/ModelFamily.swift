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

    public init(layers: Range<Int>? = nil, experts: Set<Int>? = nil, includeEmbedding: Bool? = nil, includeHead: Bool? = nil) {
        self.layers = layers
        self.experts = experts
        self.includeEmbedding = includeEmbedding
        self.includeHead = includeHead
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
    /// Throws a `ConfigError`-style error naming the field when the values are inconsistent or unsupported.
    func validate() throws
    /// Loads `shard` of the model from `source` (HF names). `weightLayout: .interleaved` copies product weights into
    /// the decode kernels' order; `progress` gets (layers done, layers) with the head as the last step.
    func loadModel(source: any TensorSource, shard: ModelShard, dispatcher: (any ExpertDispatcher)?, pool: ComputePool,
                   weightLayout: WeightLayout, progress: ((Int, Int) -> Void)?) throws -> DecoderModel
}
