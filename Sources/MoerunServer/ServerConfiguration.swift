// What `moerun serve` tells the HTTP front end: where to listen, who may call, which model name it answers to,
// and the limits it enforces before a request reaches the engine.

public struct ServerConfiguration: Sendable {
    /// Bind address; loopback unless the operator opens it on purpose.
    public var host: String
    /// 0 picks a free port (tests); `OpenAIServer.listeningPort()` tells which.
    public var port: Int
    /// When set, /v1/*, /tokenize and /detokenize require `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// The `model` a request must name (and what /v1/models lists).
    public var servedModelName: String
    /// /v1/models `root`: the checkpoint directory the name stands for.
    public var modelRoot: String
    /// Context length: prompt + max_tokens beyond it is refused, never clamped.
    public var maxModelLength: Int
    /// Token ids must be below this (the embedding rows); nil: the tokenizer's vocabulary size.
    public var vocabularySize: Int?
    /// Default max_tokens when a request gives none: min(maxModelLength - prompt, defaultMaxTokens). The remaining
    /// context alone (vLLM's rule) would let a one-line request on a 128K-context model decode for hours on CPUs.
    public var defaultMaxTokens: Int
    /// Request bodies larger than this get 413 before they are parsed.
    public var maxBodyBytes: Int
    /// Server header and logger label.
    public var serverName: String

    public init(host: String = "127.0.0.1", port: Int = 8000, apiKey: String? = nil, servedModelName: String,
                modelRoot: String, maxModelLength: Int, vocabularySize: Int? = nil, defaultMaxTokens: Int = 4096,
                maxBodyBytes: Int = 4 << 20, serverName: String = "moerun") {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.servedModelName = servedModelName
        self.modelRoot = modelRoot
        self.maxModelLength = maxModelLength
        self.vocabularySize = vocabularySize
        self.defaultMaxTokens = defaultMaxTokens
        self.maxBodyBytes = maxBodyBytes
        self.serverName = serverName
    }
}
