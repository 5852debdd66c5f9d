// safetensors reading: round trips for every dtype, sharded index with lazy opening, FP8 block dequantization.
import Foundation
import Testing
@testable import Checkpoint
import Tensors

@Test func singleFileRoundTripsEveryDType() throws {
    let dir = makeTempDir()
    defer { removeDir(dir) }
    let f = randomFloats(6, seed: 1)
    let bf: [UInt16] = f.map(floatToBF16)
    let h: [UInt16] = [0x3C00, 0xC000, 0x3800, 0, 0x7BFF, 0x0001]   // 1, -2, 0.5, 0, 65504, 2^-24
    let i32: [Int32] = [-7, 0, 1 << 30], i64: [Int64] = [-(1 << 40), 5], u8: [UInt8] = [0, 9, 255]
    try writeFile(dir + "/model.safetensors", [
        TensorBlob("a.f32", .f32, [2, 3], f32Bytes(f)),
        TensorBlob("a.bf16", .bf16, [3, 2], bf.withUnsafeBytes { Array($0) }),
        TensorBlob("a.f16", .f16, [6], h.withUnsafeBytes { Array($0) }),
        TensorBlob("ids.i32", .i32, [3], i32.withUnsafeBytes { Array($0) }),
        TensorBlob("ids.i64", .i64, [2], i64.withUnsafeBytes { Array($0) }),
        TensorBlob("mask.u8", .u8, [3], u8),
        TensorBlob("empty", .f32, [0], []),
    ])
    let ck = try CheckpointDirectory(directory: dir)
    #expect(ck.tensorNames.count == 7 && ck.contains("a.f32") && !ck.contains("nope"))
    #expect(try ck.info("a.bf16") == TensorInfo(name: "a.bf16", dtype: .bf16, shape: [3, 2], file: "model.safetensors", byteCount: 12))
    let w = try ck.weight("a.f32")
    #expect(w.rows == 2 && w.cols == 3 && w.dtype == .f32)
    for i in 0..<6 { #expect(w.element(i / 3, i % 3) == f[i]) }
    let wb = try ck.weight("a.bf16")
    for i in 0..<6 { #expect(wb.element(i / 2, i % 2) == bf16ToFloat(bf[i])) }
    #expect(try ck.vector("a.f16") == [1, -2, 0.5, 0, 65504, 0x1p-24])
    #expect(try ck.integers("ids.i32") == [-7, 0, 1 << 30])
    #expect(try ck.integers("ids.i64") == [-(1 << 40), 5])
    #expect(try ck.integers("mask.u8") == [0, 9, 255])
    #expect(try ck.vector("empty").isEmpty)
    // Data starts 8-byte aligned, so views are zero-copy into the mapping.
    let file = try SafetensorsFile(path: dir + "/model.safetensors")
    #expect(file.header.dataStart % 8 == 0 && file.header.metadata["format"] == "pt")
    if case .f32(let p) = w.storage { #expect(w.owner is MappedFile && Int(bitPattern: p) % 4 == 0) }
}

@Test func unalignedDataIsCopiedNotMisread() throws {
    // MLX-style writers do not pad the header; a BF16 tensor at an odd address must still read correctly.
    let dir = makeTempDir()
    defer { removeDir(dir) }
    let values: [UInt16] = [floatToBF16(1.5), floatToBF16(-3)]
    let header = #"{"w":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}"#   // 57 bytes: data at 65
    writeRaw(dir + "/model.safetensors", header: header, data: values.withUnsafeBytes { Array($0) })
    let w = try CheckpointDirectory(directory: dir).weight("w")
    #expect(w.element(0, 0) == 1.5 && w.element(0, 1) == -3)
}

@Test func shardedIndexOpensOnlyTheShardsAsked() throws {
    let dir = makeTempDir()
    defer { removeDir(dir) }
    var map: [String: String] = [:]
    for s in 1...3 {
        let shard = String(format: "model-%05d-of-%06d.safetensors", s, 3)
        let blobs = (0..<4).map { TensorBlob("layer\(s).t\($0)", .f32, [16, 16], f32Bytes(randomFloats(256, seed: UInt64(s * 10 + $0)))) }
        try writeFile(dir + "/" + shard, blobs)
        for b in blobs { map[b.decl.name] = shard }
    }
    try SafetensorsWriter.writeIndex(directory: dir, weightMap: map, totalSize: 3 * 4 * 1024)
    let ck = try CheckpointDirectory(directory: dir)
    #expect(ck.tensorNames.count == 12 && ck.shardNames.count == 3 && ck.indexTotalSize == 12288)
    #expect(ck.openedFiles.isEmpty)
    #expect(try ck.info("layer2.t1").file == "model-00002-of-000003.safetensors")
    #expect(ck.openedFiles == ["model-00002-of-000003.safetensors"] && ck.mappedFiles.isEmpty)
    let w = try ck.weight("layer3.t0")
    #expect(w.element(0, 0) == randomFloats(256, seed: 30)[0])
    #expect(ck.mappedFiles == ["model-00003-of-000003.safetensors"])
    #expect(ck.touchedTensorBytes == 1024)
    #expect(try ck.allInfos().count == 12 && ck.openedFiles.count == 3)
}

@Test func fp8BlockScaledWeightsDequantizeBitExactIncludingEdgeBlocks() throws {
    // 200 x 300 -> 2 x 3 grid with partial edge blocks; 576 x 130 -> 5 x 2 (576/5 is not an integer: never derive
    // the block size from the grid shape).
    let dir = makeTempDir()
    defer { removeDir(dir) }
    var blobs: [TensorBlob] = []
    var expected: [String: (codes: [UInt8], scales: [Float], rows: Int, cols: Int)] = [:]
    for (name, rows, cols) in [("a.weight", 200, 300), ("kv_a_proj_with_mqa.weight", 576, 130)] {
        let values = randomFloats(rows * cols, seed: UInt64(rows), amplitude: 0.05)
        let q = quantizeReference(values, rows: rows, cols: cols)
        let grid = [(rows + 127) / 128, (cols + 127) / 128]
        blobs.append(TensorBlob(name, .f8e4m3, [rows, cols], q.codes))
        blobs.append(TensorBlob(name + "_scale_inv", .f32, grid, f32Bytes(q.scales)))
        expected[name] = (q.codes, q.scales, rows, cols)
    }
    // Scales in another shard than their weight: the pairing must follow the index.
    try writeFile(dir + "/model-00001-of-00002.safetensors", blobs.filter { !$0.decl.name.hasSuffix("_scale_inv") })
    try writeFile(dir + "/model-00002-of-00002.safetensors", blobs.filter { $0.decl.name.hasSuffix("_scale_inv") })
    var map: [String: String] = [:]
    for b in blobs { map[b.decl.name] = b.decl.name.hasSuffix("_scale_inv") ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors" }
    try SafetensorsWriter.writeIndex(directory: dir, weightMap: map, totalSize: 0)
    let ck = try CheckpointDirectory(directory: dir)
    for (name, e) in expected {
        let w = try ck.weight(name)
        #expect(w.dtype == .f8e4m3 && w.rows == e.rows && w.cols == e.cols)
        let gc = (e.cols + 127) / 128
        var row = [Float](repeating: 0, count: e.cols)
        for r in 0..<e.rows {
            row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
            for c in 0..<e.cols {
                // Reference formula: W[i,j] = fp32(e4m3(Wq[i,j])) * fp32(S[i/128, j/128]), one rounding.
                let reference = fp8E4M3ToFloat(e.codes[r * e.cols + c]) * e.scales[(r / 128) * gc + c / 128]
                if row[c].bitPattern != reference.bitPattern {
                    Issue.record("\(name)[\(r),\(c)] \(row[c]) != \(reference)")
                    return
                }
            }
        }
    }
}

@Test func residentBytesFollowTouchedTensorsOnly() throws {
    // 8 tensors of 4 MiB in one file; reading one must page in about 4 MiB of this mapping, not 32.
    let dir = makeTempDir()
    defer { removeDir(dir) }
    let mib = 1 << 20
    try writeFile(dir + "/model.safetensors", (0..<8).map {
        TensorBlob("t\($0)", .f32, [1024, 1024], f32Bytes([Float](repeating: Float($0), count: 1 << 20)))
    })
    let ck = try CheckpointDirectory(directory: dir)
    let w = try ck.weight("t3")
    var sum: Float = 0
    for r in 0..<1024 { for c in stride(from: 0, to: 1024, by: 256) { sum += w.element(r, c) } }
    #expect(sum == 3 * 4096)
    let resident = ck.residentMappedBytes()
    #expect(ck.touchedTensorBytes == 4 * mib)
    // Kernel fault-around and large page-cache folios (up to 2 MiB) may map a little beyond each end.
    #expect(resident >= 4 * mib && resident <= 8 * mib, "resident \(resident)")
}
