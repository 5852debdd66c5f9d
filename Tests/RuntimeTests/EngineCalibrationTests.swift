// Engine calibration: the fit recovers known engine terms from step times the cost model produced with them, and
// a quick real run on the tiny synth shape yields finite, non-negative terms and cleans up its checkpoint.
import Foundation
import Models
import Parallel
import Runtime
import Testing

@Suite struct EngineCalibrationTests {
    static func cluster(overhead: Double, sync: Double, rate: Double) -> Cluster {
        var node = NodeSpec(host: "localhost", ranks: 1, slots: 4, memoryGB: 16, reservedGB: 1, cores: 2, sockets: 1,
                            memoryBandwidthGBs: 30, coreBandwidthGBs: 20, gemmGFlopsPerCore: 80, gemvGFlopsPerCore: 20)
        node.layerOverheadUS = overhead
        node.layerSyncUS = sync
        node.elementwiseGBs = rate
        return Cluster(name: "t", description: "", nodes: [node], interNode: LinkSpec(bandwidthGBs: 10, latencyUS: 2),
                       intraNode: LinkSpec(bandwidthGBs: 10, latencyUS: 2), launcher: LauncherSpec(), calibration: nil)
    }

    @Test func fitRecoversTheTermsThatProducedTheTimes() throws {
        let config = try EngineCalibration.config()
        let truth = Self.cluster(overhead: 180, sync: 40, rate: 6)
        let measured = try [1, 2].map { try EngineCalibration.steps(config: config, cluster: truth, threads: $0, decodeContext: 24) }
        let fit = try EngineCalibration.fit(config: config, cluster: Self.cluster(overhead: 0, sync: 0, rate: 1), threads: [1, 2],
                                        measured: measured, decodeContext: 24)
        #expect(abs(fit.layerOverheadUS - 180) < 0.01)
        #expect(abs(fit.layerSyncUS - 40) < 0.01)
        #expect(abs(fit.elementwiseGBs - 6) < 1e-3)
        // The check point (decode at batch 8) is then predicted exactly too.
        for i in 0..<2 { #expect(abs(fit.predicted[i][2] - measured[i][2]) < 1e-9) }
    }

    @Test func residualThatDoesNotGrowWithTokensIsAllPerLayer() throws {
        let config = try EngineCalibration.config()
        let bare = Self.cluster(overhead: 0, sync: 0, rate: .greatestFiniteMagnitude)
        var measured = try [1, 2].map { try EngineCalibration.steps(config: config, cluster: bare, threads: $0, decodeContext: 24) }
        measured[0][1] += 0.002  // decode 2 ms slower than the products, prefill exactly on them
        measured[1][1] += 0.002
        let fit = try EngineCalibration.fit(config: config, cluster: bare, threads: [1, 2], measured: measured, decodeContext: 24)
        #expect(abs(fit.layerOverheadUS - 2000 / Double(config.numHiddenLayers)) < 0.01)
        #expect(fit.layerSyncUS == 0)
        #expect(fit.elementwiseGBs == 1000)
    }

    @Test func quickRunOnTheTinyShape() throws {
        let cluster = Self.cluster(overhead: 0, sync: 0, rate: 1)
        var lines: [String] = []
        let fit = try EngineCalibration.measure(cluster: cluster, cores: 2, quick: true) { lines.append($0) }
        #expect(fit.threads == [1, 2] && fit.measured.count == 2 && fit.measured.allSatisfy { $0.count == 3 && $0.allSatisfy { $0 > 0 } })
        #expect(fit.layerOverheadUS >= 0 && fit.layerSyncUS >= 0 && fit.elementwiseGBs > 0 && fit.elementwiseGBs.isFinite)
        let dir = lines.first.flatMap { $0.components(separatedBy: " to ").last }
        #expect(dir != nil && !FileManager.default.fileExists(atPath: dir!))
    }
}
