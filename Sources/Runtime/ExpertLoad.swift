// ExpertLoad: how many (token, expert) pairs each logical expert of each MoE layer received, how that load
// falls on ranks, and a balance figure per layer (mean / max load per rank: 1 = perfectly even).
// Written as CSV / JSON and drawn as SVG (heat-map layers x experts; bar chart per rank) for people to look at.
import Foundation
import Models
import Parallel

public struct ExpertLoad: Sendable, Codable {
    public var layers: [Int]
    public var experts: Int
    /// counts[i][e]: pairs routed to expert e of MoE layer layers[i].
    public var counts: [[Int]]
    /// Pairs processed by each rank's experts (all its MoE layers).
    public var rankLoad: [Int]
    /// Per MoE layer: mean / max over the stage's lanes of the pairs each lane's experts received.
    public var balance: [Double]

    public init(plan: ParallelPlan, model: ModelShape, flatCounts: [Int64]) {
        let moe = (0..<model.layerCount).filter { model.isMoE($0) }
        let e = model.routedExperts
        layers = moe
        experts = e
        let counts = moe.map { l in (0..<e).map { Int(flatCounts[l * e + $0]) } }
        self.counts = counts
        var perRank = [Int](repeating: 0, count: plan.rankCount)
        var balance: [Double] = []
        for (i, l) in moe.enumerated() {
            let stage = plan.stage(ofLayer: LayerIndex(l))
            let lanes = plan.laneExperts.map { range in range.reduce(0) { $0 + counts[i][$1] } }
            for (lane, load) in lanes.enumerated() { perRank[plan.rank(stage: stage, lane: lane).value] += load }
            let maxLoad = lanes.max() ?? 0
            balance.append(maxLoad == 0 ? 1 : Double(lanes.reduce(0, +)) / Double(lanes.count) / Double(maxLoad))
        }
        rankLoad = perRank
        self.balance = balance
    }

    public var csv: String {
        var out = "layer,expert,tokens\n"
        for (i, l) in layers.enumerated() {
            for e in 0..<experts { out += "\(l),\(e),\(counts[i][e])\n" }
        }
        return out
    }

    /// Heat-map: one row per MoE layer, one column per expert, colour = tokens (white -> dark red).
    public func heatmapSVG() -> String {
        let cell = max(4, min(18, 900 / max(experts, 1))), rowH = max(6, min(18, 600 / max(layers.count, 1)))
        let left = 70, top = 40, width = left + experts * cell + 120, height = top + layers.count * rowH + 50
        let peak = max(counts.flatMap { $0 }.max() ?? 1, 1)
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="16" font-size="13">Expert load: tokens routed to each expert (rows: MoE layers, columns: experts)</text>

        """
        for (i, l) in layers.enumerated() {
            let y = top + i * rowH
            svg += "<text x=\"\(left - 6)\" y=\"\(y + rowH - 2)\" text-anchor=\"end\">L\(l)</text>\n"
            for e in 0..<experts {
                let v = Double(counts[i][e]) / Double(peak)
                svg += "<rect x=\"\(left + e * cell)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(rowH)\" fill=\"\(color(v))\"><title>layer \(l) expert \(e): \(counts[i][e]) tokens</title></rect>\n"
            }
            svg += "<text x=\"\(left + experts * cell + 6)\" y=\"\(y + rowH - 2)\">balance \(String(format: "%.2f", balance[i]))</text>\n"
        }
        let axisY = top + layers.count * rowH + 14
        svg += "<text x=\"\(left)\" y=\"\(axisY)\">expert 0</text><text x=\"\(left + experts * cell)\" y=\"\(axisY)\" text-anchor=\"end\">expert \(experts - 1)</text>\n"
        // Legend.
        for k in 0..<10 {
            svg += "<rect x=\"\(left + k * 16)\" y=\"\(axisY + 10)\" width=\"16\" height=\"10\" fill=\"\(color(Double(k) / 9))\"/>\n"
        }
        svg += "<text x=\"\(left + 168)\" y=\"\(axisY + 19)\">0 .. \(peak) tokens</text>\n</svg>\n"
        return svg
    }

    /// Bar chart of the pairs each rank's experts processed.
    public func rankBarsSVG() -> String {
        let barW = max(12, min(60, 800 / max(rankLoad.count, 1))), chartH = 200, left = 60, top = 40
        let width = left + rankLoad.count * (barW + 8) + 40, height = top + chartH + 50
        let peak = max(rankLoad.max() ?? 1, 1)
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="16" font-size="13">Routed (token, expert) pairs processed per rank</text>

        """
        for (r, load) in rankLoad.enumerated() {
            let h = Int(Double(chartH) * Double(load) / Double(peak))
            let x = left + r * (barW + 8)
            svg += "<rect x=\"\(x)\" y=\"\(top + chartH - h)\" width=\"\(barW)\" height=\"\(h)\" fill=\"#b03a2e\"><title>rank \(r): \(load)</title></rect>\n"
            svg += "<text x=\"\(x + barW / 2)\" y=\"\(top + chartH + 14)\" text-anchor=\"middle\">\(r)</text>\n"
            svg += "<text x=\"\(x + barW / 2)\" y=\"\(top + chartH - h - 3)\" text-anchor=\"middle\">\(load)</text>\n"
        }
        svg += "<text x=\"\(left)\" y=\"\(top + chartH + 32)\">rank</text>\n</svg>\n"
        return svg
    }

    private func color(_ v: Double) -> String {
        // White -> yellow -> red -> dark red.
        let t = max(0, min(1, v))
        let r = t < 0.5 ? 255 : Int(255 - (t - 0.5) * 2 * 135)
        let g = Int(255 - t * 235)
        let b = Int(255 - min(1, t * 2) * 235)
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    /// Write PREFIX.csv, PREFIX.json, PREFIX-heatmap.svg and PREFIX-ranks.svg; returns the paths.
    public func write(prefix: String) throws -> [String] {
        let paths = [prefix + ".csv", prefix + ".json", prefix + "-heatmap.svg", prefix + "-ranks.svg"]
        try csv.write(toFile: paths[0], atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: paths[1]))
        try heatmapSVG().write(toFile: paths[2], atomically: true, encoding: .utf8)
        try rankBarsSVG().write(toFile: paths[3], atomically: true, encoding: .utf8)
        return paths
    }
}
