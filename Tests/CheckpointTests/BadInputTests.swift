// Every malformed checkpoint input yields a typed CheckpointError naming the file / tensor, with a hint.
import Foundation
import Testing
@testable import Checkpoint
import Tensors

private func openError(_ dir: String) -> CheckpointError? {
    checkpointError { _ = try CheckpointDirectory(directory: dir).allInfos() }
}

private let okHeader = #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#

@Test func truncatedFileIsNamed() {
    let dir = makeTempDir(); defer { removeDir(dir) }
    writeRaw(dir + "/model.safetensors", header: okHeader, data: [UInt8](repeating: 0, count: 10))
    let e = openError(dir)
    #expect(e?.code == .truncatedFile && e?.file == "model.safetensors" && e?.tensor == "w")
    #expect(e?.description.contains("hint:") == true)
    _ = FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data([1, 2, 3]))
    #expect(openError(dir)?.code == .truncatedFile)
}

@Test func headerLengthBeyondFileIsNamed() {
    let dir = makeTempDir(); defer { removeDir(dir) }
    writeRaw(dir + "/model.safetensors", header: okHeader, data: [UInt8](repeating: 0, count: 16), declaredLength: 1 << 20)
    let e = openError(dir)
    #expect(e?.code == .headerTooLarge && e?.file == "model.safetensors")
}

@Test func nonJSONHeaderIsNamed() {
    let dir = makeTempDir(); defer { removeDir(dir) }
    writeRaw(dir + "/model.safetensors", header: "{this is not json", data: [])
    #expect(openError(dir)?.code == .headerNotJSON)
    writeRaw(dir + "/model.safetensors", header: "[1,2,3]", data: [])
    #expect(openError(dir)?.code == .headerNotJSON)
}

@Test func badEntriesAreNamed() {
    let dir = makeTempDir(); defer { removeDir(dir) }
    let cases: [(String, CheckpointError.Code)] = [
        (#"{"w":{"dtype":"F32","shape":[2,2]}}"#, .badHeaderEntry),
        (#"{"w":{"dtype":"F32","shape":[2,"x"],"data_offsets":[0,16]}}"#, .badHeaderEntry),
        (#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,1.5]}}"#, .badHeaderEntry),
        (#"{"w":{"dtype":"Q4_K","shape":[2,2],"data_offsets":[0,16]}}"#, .unknownDType),
        (#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}}"#, .offsetsOutOfRange),
        (#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}, "v":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}}"#, .offsetsOutOfRange),
        (#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}, "v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, .overlappingTensors),
        (#"{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}}"#, .byteCountMismatch),
        (#"{"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}}"#, .byteCountMismatch),
    ]
    for (header, code) in cases {
        writeRaw(dir + "/model.safetensors", header: header, data: [UInt8](repeating: 0, count: 16))
        let e = openError(dir)
        #expect(e?.code == code && e?.file == "model.safetensors" && e?.tensor != nil, "\(header) -> \(String(describing: e))")
    }
}

@Test func missingTensorAndWrongAccessorAreNamed() throws {
    let dir = makeTempDir(); defer { removeDir(dir) }
    try writeFile(dir + "/model.safetensors", [TensorBlob("v", .f32, [4], f32Bytes([1, 2, 3, 4])),
                                               TensorBlob("ids", .i64, [1, 1], [UInt8](repeating: 0, count: 8))])
    let ck = try CheckpointDirectory(directory: dir)
    var e = checkpointError { _ = try ck.weight("model.norm.weight") }
    #expect(e?.code == .missingTensor && e?.tensor == "model.norm.weight")
    e = checkpointError { _ = try ck.weight("v") }
    #expect(e?.code == .shapeMismatch && e?.tensor == "v" && e?.file == "model.safetensors")
    e = checkpointError { _ = try ck.weight("ids") }
    #expect(e?.code == .unsupportedDType && e?.tensor == "ids")
}

@Test func missingShardNamedByIndexIsNamed() throws {
    let dir = makeTempDir(); defer { removeDir(dir) }
    try writeFile(dir + "/model-00001-of-00002.safetensors", [TensorBlob("a", .f32, [1], f32Bytes([1]))])
    try SafetensorsWriter.writeIndex(directory: dir, weightMap: ["a": "model-00001-of-00002.safetensors",
                                                                 "b": "model-00002-of-00002.safetensors"], totalSize: 8)
    let e = openError(dir)
    #expect(e?.code == .missingShard && e?.file == "model-00002-of-00002.safetensors")
    // Index says a tensor is in a shard whose header lacks it.
    try writeFile(dir + "/model-00002-of-00002.safetensors", [TensorBlob("c", .f32, [1], f32Bytes([1]))])
    let e2 = checkpointError { _ = try CheckpointDirectory(directory: dir).info("b") }
    #expect(e2?.code == .missingTensor && e2?.tensor == "b" && e2?.file == "model-00002-of-00002.safetensors")
}

@Test func malformedIndexAndEmptyDirectoryAreNamed() {
    let dir = makeTempDir(); defer { removeDir(dir) }
    #expect(openError(dir)?.code == .noSafetensors)
    #expect(openError(dir + "/nope")?.code == .notFound)
    _ = FileManager.default.createFile(atPath: dir + "/model.safetensors.index.json", contents: Data("{\"weight_map\": 3}".utf8))
    let e = openError(dir)
    #expect(e?.code == .badIndex && e?.file == "model.safetensors.index.json")
    _ = FileManager.default.createFile(atPath: dir + "/model.safetensors.index.json", contents: Data("{\"weight_map\": {\"a\": \"../x\"}}".utf8))
    #expect(openError(dir)?.code == .badIndex)
}

private func fp8Dir(scales: [Float], scaleShape: [Int] = [2, 1], scaleDType: DType = .f32, withScale: Bool = true) throws -> String {
    let dir = makeTempDir("fp8")
    var blobs = [TensorBlob("x.weight", .f8e4m3, [130, 64], [UInt8](repeating: 0x38, count: 130 * 64))]
    if withScale {
        let bytes = scaleDType == .f32 ? f32Bytes(scales) : scales.map(floatToBF16).withUnsafeBytes { Array($0) }
        blobs.append(TensorBlob("x.weight_scale_inv", scaleDType, scaleShape, bytes))
    }
    try writeFile(dir + "/model.safetensors", blobs)
    return dir
}

@Test func badBlockScalesAreNamed() throws {
    for (scales, what) in [([1, Float.nan], "nan"), ([Float.infinity, 1], "inf"), ([1, 0], "zero"), ([1, 0x1p70], "huge")] {
        let dir = try fp8Dir(scales: scales); defer { removeDir(dir) }
        let e = checkpointError { _ = try CheckpointDirectory(directory: dir).weight("x.weight") }
        #expect(e?.code == .badScale && e?.tensor == "x.weight_scale_inv" && e?.file == "model.safetensors", "\(what)")
    }
    // Every directory made below is removed at the end (one `defer` per directory, not per variable).
    var made: [String] = []; defer { made.forEach(removeDir) }
    func dir(_ d: String) -> String { made.append(d); return d }
    var e = checkpointError { _ = try CheckpointDirectory(directory: dir(try fp8Dir(scales: [1, 1, 1], scaleShape: [3, 1]))).weight("x.weight") }
    #expect(e?.code == .shapeMismatch && e?.tensor == "x.weight_scale_inv")
    e = checkpointError { _ = try CheckpointDirectory(directory: dir(try fp8Dir(scales: [1, 1], scaleDType: .bf16))).weight("x.weight") }
    #expect(e?.code == .badScale)
    e = checkpointError { _ = try CheckpointDirectory(directory: dir(try fp8Dir(scales: [], withScale: false))).weight("x.weight") }
    #expect(e?.code == .missingScale && e?.tensor == "x.weight")
    // A good pair: 0x38 = 1.0 in e4m3, times scale 0.5 / 2.0 for the two row blocks.
    let w = try CheckpointDirectory(directory: dir(try fp8Dir(scales: [0.5, 2]))).weight("x.weight")
    #expect(w.element(0, 0) == 0.5 && w.element(129, 63) == 2)
}
