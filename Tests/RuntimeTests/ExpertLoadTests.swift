// Expert load accounting: every routed (token, expert) pair is counted once whatever the layout, rank loads
// add up, and the SVG / CSV renderings carry every cell.
import Comm
import Models
import Parallel
import Runtime
import Testing
import TestSupport

@Suite struct ExpertLoadTests {
    func load(pp: Int, ep: Int) throws -> ExpertLoad {
        let config = try tinyConfig()
        let source = randomSource(config, seed: 3)
        let plan = try ParallelPlan.make(model: config.shape, ranks: pp * ep, pp: pp, ep: ep)
        let requests = [GenerationRequest(prompt: [1, 2, 3, 4], maxNewTokens: 3), GenerationRequest(prompt: [9], maxNewTokens: 5)]
        return try LocalCommunicator.run(ranks: pp * ep) { comm -> ExpertLoad? in
            let engine = try Engine(world: comm, config: config, source: source, plan: plan, options: EngineOptions())
            _ = try engine.generate(comm.rank == 0 ? requests : [], eosTokens: [])
            return try engine.expertLoad()
        }[0]!
    }

    @Test func countsEveryPairOnceInEveryLayout() throws {
        let config = try tinyConfig()
        // Tokens through the model: prompt + generated - 1 per request (the last sampled token is never fed).
        let tokens = (4 + 3 - 1) + (1 + 5 - 1)
        let single = try load(pp: 1, ep: 1)
        let moeLayers = (0..<config.numHiddenLayers).filter { config.isMoELayer($0) }
        #expect(single.layers == moeLayers)
        for row in single.counts { #expect(row.reduce(0, +) == tokens * config.numExpertsPerTok) }
        #expect(single.rankLoad == [tokens * config.numExpertsPerTok * moeLayers.count])
        let sharded = try load(pp: 1, ep: 4)
        #expect(sharded.counts == single.counts)
        #expect(sharded.rankLoad.reduce(0, +) == single.rankLoad[0])
        #expect(sharded.balance.allSatisfy { $0 > 0 && $0 <= 1 })
    }

    @Test func renderingsCoverEveryCell() throws {
        let l = try load(pp: 1, ep: 2)
        let svg = l.heatmapSVG()
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.components(separatedBy: "<title>layer").count - 1 == l.layers.count * l.experts)
        #expect(l.csv.split(separator: "\n").count == 1 + l.layers.count * l.experts)
        #expect(l.rankBarsSVG().components(separatedBy: "<title>rank").count - 1 == 2)
    }
}
