// ModelLoading: open a Hugging Face checkpoint directory for serving: config.json decoded strictly and
// validated, shards opened lazily (a rank maps only the files holding the tensors it asks for).
import Checkpoint
import Foundation
import Models

public struct OpenedModel: @unchecked Sendable {
    public let directory: String
    public let config: any FamilyConfiguration
    /// config.json keys moerun does not know (tolerated; printed once by rank 0).
    public let unknownKeys: [String]
    public let checkpoint: CheckpointDirectory
}

public enum ModelLoading {
    public static func open(_ directory: String) throws -> OpenedModel {
        let checkpoint = try CheckpointDirectory(directory: directory)
        guard let data = checkpoint.configData else {
            throw CheckpointError(.notFound, file: directory + "/config.json", "no config.json in the checkpoint directory",
                                  hint: "a Hugging Face model folder holds config.json next to the safetensors files")
        }
        let decoded = try ModelFamilies.decode(data, file: directory + "/config.json")
        try decoded.config.validate()
        return OpenedModel(directory: directory, config: decoded.config, unknownKeys: decoded.unknownKeys, checkpoint: checkpoint)
    }
}

/// Checks of run-time input against the model, with messages that say how to fix them.
public enum RequestValidation {
    public struct Problem: Error, CustomStringConvertible {
        public let message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    public static func check(_ requests: [GenerationRequest], config: any FamilyConfiguration) throws {
        guard !requests.isEmpty else { throw Problem(message: "no prompts given: pass --prompt TEXT, --chat TEXT, --messages FILE, --prompt-ids 1,2,3 or --prompts FILE") }
        for (i, r) in requests.enumerated() {
            let which = requests.count == 1 ? "the prompt" : "prompt \(i + 1)"
            guard !r.prompt.isEmpty else { throw Problem(message: "\(which) is empty: give at least one token id") }
            if let bad = r.prompt.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw Problem(message: "\(which) has token id \(bad), outside the vocabulary 0..<\(config.vocabSize) of this model")
            }
            guard r.maxNewTokens >= 1 else { throw Problem(message: "--max-new-tokens must be at least 1") }
            let needed = r.prompt.count + r.maxNewTokens
            guard needed <= config.maxPositionEmbeddings else {
                throw Problem(message: "\(which) (\(r.prompt.count) tokens) + \(r.maxNewTokens) new tokens exceeds max_position_embeddings \(config.maxPositionEmbeddings); shorten the prompt or lower --max-new-tokens")
            }
        }
    }
}
