// transformers-made fixtures (Tests/Fixtures, or $MOERUN_FIXTURES): every tensor accounted for by the table,
// every weight served, FP8 pairs dequantized bit-exactly by the reference formula. Skipped when absent.
import Checkpoint
import Foundation
import Models
import Tensors
import Testing
@testable import Runtime

private let fixturesRoot: String = ProcessInfo.processInfo.environment["MOERUN_FIXTURES"]
    ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path

private let fixtureDirs: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: fixturesRoot)) ?? []).sorted()
    .map { fixturesRoot + "/" + $0 }
    .filter { FileManager.default.fileExists(atPath: $0 + "/config.json") }

@Test(.enabled(if: !fixtureDirs.isEmpty, "no transformers fixtures found"), arguments: fixtureDirs)
func transformersFixtureIsFullyAccountedFor(_ dir: String) throws {
    let report = try Inspector.inspect(directory: dir)
    let accounting = try #require(report.checkpoint?.accounting)
    #expect(accounting.unexpected.isEmpty, "\(dir): \(accounting.unexpected)")
    #expect(accounting.matched + accounting.scales == accounting.total)
    let ck = try CheckpointDirectory(directory: dir)
    for name in ck.tensorNames where !name.hasSuffix("_scale_inv") {
        let info = try ck.info(name)
        if info.shape.count == 1 { #expect(try ck.vector(name).allSatisfy { $0.isFinite }); continue }
        let w = try ck.weight(name)
        guard case .fp8e4m3 = w.storage else { continue }
        let codes = Array(try ck.raw(name).bytes)
        let grid = try ck.raw(CheckpointDirectory.scaleName(for: name))
        let gc = (w.cols + 127) / 128
        for r in 0..<w.rows {
            for c in 0..<w.cols {
                let s = grid.bytes.loadUnaligned(fromByteOffset: ((r / 128) * gc + c / 128) * 4, as: Float.self)
                let reference = fp8E4M3ToFloat(codes[r * w.cols + c]) * s
                if w.element(r, c).bitPattern != reference.bitPattern {
                    Issue.record("\(name)[\(r),\(c)]")
                    return
                }
            }
        }
    }
}
