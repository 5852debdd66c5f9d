// Cluster: the machines a plan runs on (nodes, ranks, memory, cores, measured rates; links between and inside
// nodes), decoded strictly from YAML bytes (clusters/*.yaml, format in clusters/README.md). Pure: the caller reads the file.
import Foundation
import Yams

/// One node after defaults and overrides are applied. Units: GB = 1e9 bytes, GB/s = 1e9 bytes/s.
public struct NodeSpec: Codable, Sendable, Equatable {
    public var host: String
    /// MPI ranks placed on this node.
    public var ranks: Int
    /// Processes the node may run (hostfile `slots=`); ranks must not exceed it.
    public var slots: Int
    public var memoryGB: Double
    /// Memory kept free for the OS and other processes.
    public var reservedGB: Double
    public var cores: Int
    public var sockets: Int
    /// Aggregate streaming-read bandwidth of the node (all cores).
    public var memoryBandwidthGBs: Double
    /// Streaming-read bandwidth one thread achieves.
    public var coreBandwidthGBs: Double
    /// moerun's linear kernel per core with >= 4 tokens per weight row (register-tiled GEMM path).
    public var gemmGFlopsPerCore: Double
    /// moerun's linear kernel per core with 1 token (matrix-vector path, decode).
    public var gemvGFlopsPerCore: Double
    /// Fraction of the streaming-read bandwidth moerun's linear kernel achieves on weights (decode is bound by it).
    public var streamEfficiency: Double
    /// Fixed cost of one product call (thread fork/join, activation packing), microseconds.
    public var callOverheadUS: Double
    /// Engine time per decoder layer per step outside the products (routing, dispatch bookkeeping, buffers), us.
    public var layerOverheadUS: Double
    /// What a rank computing with more than one thread adds per layer per step (fork/join waits, idle workers), us.
    public var layerSyncUS: Double
    /// Rate of the engine's element-wise work (norms, RoPE, SwiGLU, softmax, row copies) in GB of FP32
    /// activations touched per second (`CostModel.elementwiseBytes`).
    public var elementwiseGBs: Double

    public init(host: String, ranks: Int, slots: Int, memoryGB: Double, reservedGB: Double, cores: Int, sockets: Int,
                memoryBandwidthGBs: Double, coreBandwidthGBs: Double, gemmGFlopsPerCore: Double, gemvGFlopsPerCore: Double,
                streamEfficiency: Double = NodeSpec.defaultStreamEfficiency, callOverheadUS: Double = NodeSpec.defaultCallOverheadUS,
                layerOverheadUS: Double = NodeSpec.defaultLayerOverheadUS, layerSyncUS: Double = NodeSpec.defaultLayerSyncUS,
                elementwiseGBs: Double = NodeSpec.defaultElementwiseGBs) {
        self.host = host
        self.ranks = ranks
        self.slots = slots
        self.memoryGB = memoryGB
        self.reservedGB = reservedGB
        self.cores = cores
        self.sockets = sockets
        self.memoryBandwidthGBs = memoryBandwidthGBs
        self.coreBandwidthGBs = coreBandwidthGBs
        self.gemmGFlopsPerCore = gemmGFlopsPerCore
        self.gemvGFlopsPerCore = gemvGFlopsPerCore
        self.streamEfficiency = streamEfficiency
        self.callOverheadUS = callOverheadUS
        self.layerOverheadUS = layerOverheadUS
        self.layerSyncUS = layerSyncUS
        self.elementwiseGBs = elementwiseGBs
    }

    /// Defaults for uncalibrated files: what `moerun plan --calibrate` measured on a 2-core Zen 4 node (0.7-0.85 of
    /// the read probe; 3-8 us per call; engine terms 55-600 us per layer on a 2-core VM with small synth models,
    /// which real-size layers amortise).
    public static let defaultStreamEfficiency = 0.8
    public static let defaultCallOverheadUS = 5.0
    public static let defaultLayerOverheadUS = 50.0
    public static let defaultLayerSyncUS = 30.0
    public static let defaultElementwiseGBs = 5.0

    /// Bytes ranks on this node may use together.
    public var usableBytes: Double { (memoryGB - reservedGB) * 1e9 }
    /// Cores one rank computes on (fractional when ranks oversubscribe the cores).
    public var coresPerRank: Double { Double(cores) / Double(max(ranks, 1)) }
    /// Threads each rank should run (`generate --threads`): its whole cores, at least one.
    public var threadsPerRank: Int { max(1, cores / max(ranks, 1)) }
}

/// A link class: bandwidth in GB/s (bytes) and latency per message in microseconds.
public struct LinkSpec: Codable, Sendable, Equatable {
    public var bandwidthGBs: Double
    public var latencyUS: Double
    public init(bandwidthGBs: Double, latencyUS: Double) {
        self.bandwidthGBs = bandwidthGBs
        self.latencyUS = latencyUS
    }
}

/// Launcher preferences carried by the cluster file.
public struct LauncherSpec: Codable, Sendable, Equatable {
    /// Extra `mpirun` arguments (e.g. `--mca btl_tcp_if_include ib0`).
    public var mpirunArgs: [String] = []
    /// Extra `srun` arguments (e.g. `--partition=cpu`).
    public var srunArgs: [String] = []
    /// Path of the moerun binary on the nodes (default: `moerun` on PATH).
    public var binary: String = "moerun"
    public init() {}
}

public struct Cluster: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var nodes: [NodeSpec]
    /// Between nodes (per node link).
    public var interNode: LinkSpec
    /// Between ranks of one node (MPI shared-memory transport).
    public var intraNode: LinkSpec
    public var launcher: LauncherSpec
    /// Free text on where the rates came from (written by `moerun plan --calibrate`).
    public var calibration: String?

    public init(name: String, description: String, nodes: [NodeSpec], interNode: LinkSpec, intraNode: LinkSpec,
                launcher: LauncherSpec, calibration: String?) {
        self.name = name
        self.description = description
        self.nodes = nodes
        self.interNode = interNode
        self.intraNode = intraNode
        self.launcher = launcher
        self.calibration = calibration
    }

    public var rankCount: Int { nodes.reduce(0) { $0 + $1.ranks } }
    public var isLocal: Bool { nodes.count == 1 && ["localhost", "127.0.0.1"].contains(nodes[0].host) }

    /// Node index of every rank: nodes are filled in order with consecutive ranks (what the rankfile pins).
    public var rankNodes: [Int] { nodes.enumerated().flatMap { Array(repeating: $0.offset, count: $0.element.ranks) } }
}

/// A cluster file that cannot be used: which file, which field (and line), why, how to fix it.
public struct ClusterError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable { case syntax, missingField, badValue, unknownField, tooManyRanks, duplicateHost, noNodes }
    public let code: Code
    public let file: String
    public let field: String
    public let line: Int?
    public let message: String
    public let hint: String

    public init(code: Code, file: String, field: String, line: Int?, message: String, hint: String) {
        self.code = code
        self.file = file
        self.field = field
        self.line = line
        self.message = message
        self.hint = hint
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(field.isEmpty ? "" : "\(field): ")\(message)" + (hint.isEmpty ? "" : "\n  hint: \(hint)")
    }
}

extension Cluster {
    static let nodeKeys: Set<String> = ["host", "hosts", "ranks", "slots", "memory_gb", "reserved_gb", "cores", "sockets",
                                        "memory_bandwidth_gbs", "core_bandwidth_gbs", "gemm_gflops_per_core", "gemv_gflops_per_core",
                                        "stream_efficiency", "call_overhead_us", "layer_overhead_us", "layer_sync_us", "elementwise_gbs"]
    static let topKeys: Set<String> = ["name", "description", "defaults", "nodes", "network", "launcher", "calibration"]

    /// Decode and validate a cluster description. `file` only names the source in errors.
    public static func decode(yaml text: String, file: String) throws(ClusterError) -> Cluster {
        do {
            return try decodeUnchecked(yaml: text, file: file)
        } catch let e as ClusterError {
            throw e
        } catch {
            throw ClusterError(code: .syntax, file: file, field: "", line: nil, message: "\(error)", hint: "")
        }
    }

    // Closures below throw untyped; every error they raise is a ClusterError.
    private static func decodeUnchecked(yaml text: String, file: String) throws -> Cluster {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ClusterError(code: .noNodes, file: file, field: "", line: nil, message: "the file is empty",
                                   hint: "start from clusters/local.yaml; the format is in clusters/README.md")
            }
            root = node
        } catch let e as ClusterError {
            throw e
        } catch {
            throw ClusterError(code: .syntax, file: file, field: "", line: nil, message: "not valid YAML: \(error)",
                               hint: "check indentation and that every key is followed by ':'")
        }
        let r = Reader(file: file)
        let top = try r.mapping(root, "", allowed: topKeys)
        let name = try r.string(top, "name", path: "", required: true)!
        let description = try r.string(top, "description", path: "", required: false) ?? ""
        let defaults = try top["defaults"].map { try r.mapping($0, "defaults", allowed: nodeKeys.subtracting(["host", "hosts"])) }

        guard let nodesNode = top["nodes"] else {
            throw r.error(.missingField, "nodes", root, "missing field", hint: "list the nodes, e.g. `nodes: [{hosts: [node01, node02]}]`")
        }
        guard case .sequence(let entries) = nodesNode, !entries.isEmpty else {
            throw r.error(.noNodes, "nodes", nodesNode, "must be a non-empty list of nodes", hint: "e.g. `nodes: [{hosts: [node01, node02]}]` or `- node01`")
        }
        var nodes: [NodeSpec] = []
        for (i, entry) in entries.enumerated() {
            let path = "nodes[\(i)]"
            var fields: Node.Mapping? = nil
            var hosts: [String]
            if let host = entry.scalar?.string {
                hosts = [host]
            } else {
                let m = try r.mapping(entry, path, allowed: nodeKeys)
                fields = m
                let single = try r.string(m, "host", path: path, required: false)
                let list = try m["hosts"].map { node -> [String] in
                    guard case .sequence(let s) = node, !s.isEmpty else {
                        throw r.error(.badValue, "\(path).hosts", node, "must be a non-empty list of host names", hint: "e.g. hosts: [node01, node02]")
                    }
                    return try s.enumerated().map { j, h in
                        guard let v = h.scalar?.string, !v.isEmpty else {
                            throw r.error(.badValue, "\(path).hosts[\(j)]", h, "must be a host name", hint: "")
                        }
                        return v
                    }
                }
                switch (single, list) {
                case let (h?, nil): hosts = [h]
                case let (nil, l?): hosts = l
                default:
                    throw r.error(single == nil ? .missingField : .badValue, "\(path).host", entry,
                                  single == nil ? "missing field (give `host: NAME` or `hosts: [NAMES]`)" : "give either host or hosts, not both",
                                  hint: "every node needs a host name that mpirun / srun can reach")
                }
            }
            for host in hosts {
                nodes.append(try r.node(host: host, fields: fields, defaults: defaults, path: "\(path) (\(host))", at: entry))
            }
        }
        var seen: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            if let j = seen[n.host] {
                throw ClusterError(code: .duplicateHost, file: file, field: "nodes", line: nil,
                                   message: "host '\(n.host)' is listed twice (node \(j) and node \(i))",
                                   hint: "list every machine once; put more ranks on it with `ranks:`")
            }
            seen[n.host] = i
        }

        let network = try top["network"].map { try r.mapping($0, "network", allowed: ["inter_node", "intra_node"]) }
        let inter = try network?["inter_node"].map { try r.link($0, "network.inter_node", gigabits: true) }
        if inter == nil && nodes.count > 1 {
            throw r.error(.missingField, "network.inter_node", network.map { _ in top["network"]! } ?? root,
                          "missing field (needed with \(nodes.count) nodes)",
                          hint: "add `network: {inter_node: {bandwidth_gbps: 100, latency_us: 2}}`")
        }
        let intra = try network?["intra_node"].map { try r.link($0, "network.intra_node", gigabits: false) }
        var launcher = LauncherSpec()
        if let l = top["launcher"] {
            let m = try r.mapping(l, "launcher", allowed: ["mpirun_args", "srun_args", "binary"])
            launcher.mpirunArgs = try r.strings(m, "mpirun_args", path: "launcher")
            launcher.srunArgs = try r.strings(m, "srun_args", path: "launcher")
            launcher.binary = try r.string(m, "binary", path: "launcher", required: false) ?? "moerun"
        }
        return Cluster(name: name, description: description, nodes: nodes,
                       // A single node never uses the network; the placeholder keeps the type total.
                       interNode: inter ?? LinkSpec(bandwidthGBs: 12.5, latencyUS: 2),
                       intraNode: intra ?? LinkSpec(bandwidthGBs: 10, latencyUS: 2),
                       launcher: launcher, calibration: try r.string(top, "calibration", path: "", required: false))
    }
}

/// Field readers that turn every problem into a ClusterError naming the field path and line.
private struct Reader {
    let file: String

    func error(_ code: ClusterError.Code, _ field: String, _ node: Node?, _ message: String, hint: String) -> ClusterError {
        ClusterError(code: code, file: file, field: field, line: node?.mark?.line, message: message, hint: hint)
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func mapping(_ node: Node, _ path: String, allowed: Set<String>) throws(ClusterError) -> Node.Mapping {
        guard case .mapping(let m) = node else {
            throw error(.badValue, path.isEmpty ? "(top level)" : path, node, "must be a mapping of `key: value` lines", hint: "see clusters/README.md")
        }
        for key in m.keys {
            let k = key.string ?? "?"
            if !allowed.contains(k) {
                throw error(.unknownField, join(path, k), key, "unknown field",
                            hint: "known fields here: \(allowed.sorted().joined(separator: ", "))")
            }
        }
        return m
    }

    func string(_ m: Node.Mapping, _ key: String, path: String, required: Bool) throws(ClusterError) -> String? {
        guard let node = m[key] else {
            if required { throw error(.missingField, join(path, key), nil, "missing field", hint: "add `\(key): ...`") }
            return nil
        }
        guard let s = node.scalar?.string else { throw error(.badValue, join(path, key), node, "must be text", hint: "") }
        return s
    }

    func strings(_ m: Node.Mapping, _ key: String, path: String) throws(ClusterError) -> [String] {
        guard let node = m[key] else { return [] }
        guard case .sequence(let s) = node else { throw error(.badValue, join(path, key), node, "must be a list of strings", hint: "e.g. [\"--mca\", \"btl\", \"^openib\"]") }
        var out: [String] = []
        for item in s {
            guard let v = item.scalar?.string else { throw error(.badValue, join(path, key), item, "must be a list of strings", hint: "") }
            out.append(v)
        }
        return out
    }

    /// A positive number (or >= 0 with `allowZero`) from the node entry, else from defaults.
    func number(_ key: String, _ fields: Node.Mapping?, _ defaults: Node.Mapping?, path: String, at: Node,
                allowZero: Bool = false) throws(ClusterError) -> Double? {
        let (node, where_) = fields?[key].map { ($0, join(path, key)) } ?? (defaults?[key].map { ($0, "defaults.\(key)") } ?? (nil, ""))
        guard let node else { return nil }
        guard let v = node.int.map(Double.init) ?? node.float, v.isFinite else {
            throw error(.badValue, where_, node, "must be a number (got '\(node.scalar?.string ?? "a list or mapping")')", hint: "")
        }
        guard allowZero ? v >= 0 : v > 0 else {
            throw error(.badValue, where_, node, "must be \(allowZero ? ">= 0" : "> 0") (got \(node.scalar?.string ?? "\(v)"))",
                        hint: key == "memory_gb" ? "give the node's RAM in GB (1e9 bytes), e.g. memory_gb: 512" : "")
        }
        return v
    }

    func required(_ key: String, _ fields: Node.Mapping?, _ defaults: Node.Mapping?, path: String, at: Node, example: String) throws(ClusterError) -> Double {
        guard let v = try number(key, fields, defaults, path: path, at: at) else {
            throw error(.missingField, join(path, key), at, "missing field (set it on the node or under `defaults:`)", hint: "e.g. \(key): \(example)")
        }
        return v
    }

    func integer(_ v: Double, _ key: String, path: String, at: Node) throws(ClusterError) -> Int {
        guard v == v.rounded() else { throw error(.badValue, join(path, key), at, "must be a whole number (got \(v))", hint: "") }
        return Int(v)
    }

    func node(host: String, fields: Node.Mapping?, defaults: Node.Mapping?, path: String, at: Node) throws(ClusterError) -> NodeSpec {
        let ranks = try integer(try required("ranks", fields, defaults, path: path, at: at, example: "2"), "ranks", path: path, at: at)
        let cores = try integer(try required("cores", fields, defaults, path: path, at: at, example: "64"), "cores", path: path, at: at)
        let memory = try required("memory_gb", fields, defaults, path: path, at: at, example: "512")
        let bandwidth = try required("memory_bandwidth_gbs", fields, defaults, path: path, at: at, example: "300")
        let gemm = try required("gemm_gflops_per_core", fields, defaults, path: path, at: at, example: "20 (measure with `moerun plan --calibrate`)")
        let slots = try number("slots", fields, defaults, path: path, at: at).map { v throws(ClusterError) in try integer(v, "slots", path: path, at: at) } ?? cores
        guard ranks <= slots else {
            throw error(.tooManyRanks, join(path, "ranks"), fields?["ranks"] ?? defaults?["ranks"] ?? at,
                        "\(ranks) ranks but the node has only \(slots) slots",
                        hint: "lower ranks, or set slots: \(ranks) to oversubscribe (slots default to the core count)")
        }
        let reserved = try number("reserved_gb", fields, defaults, path: path, at: at, allowZero: true) ?? 0
        guard reserved < memory else {
            throw error(.badValue, join(path, "reserved_gb"), at, "reserves \(reserved) GB of the node's \(memory) GB", hint: "reserved_gb must be below memory_gb")
        }
        let sockets = try integer(try number("sockets", fields, defaults, path: path, at: at) ?? 1, "sockets", path: path, at: at)
        // One thread streams at most a few cores' share of the node; calibrate to replace this guess.
        let coreBW = try number("core_bandwidth_gbs", fields, defaults, path: path, at: at) ?? min(bandwidth, 4 * bandwidth / Double(cores))
        let gemv = try number("gemv_gflops_per_core", fields, defaults, path: path, at: at) ?? gemm / 2
        let efficiency = try number("stream_efficiency", fields, defaults, path: path, at: at) ?? NodeSpec.defaultStreamEfficiency
        guard efficiency <= 1.5 else {
            throw error(.badValue, join(path, "stream_efficiency"), at, "stream_efficiency \(efficiency) is a fraction of memory_bandwidth_gbs",
                        hint: "use a value like 0.8 (what `moerun plan --calibrate` measures)")
        }
        let overhead = try number("call_overhead_us", fields, defaults, path: path, at: at, allowZero: true) ?? NodeSpec.defaultCallOverheadUS
        let layerOverhead = try number("layer_overhead_us", fields, defaults, path: path, at: at, allowZero: true) ?? NodeSpec.defaultLayerOverheadUS
        let layerSync = try number("layer_sync_us", fields, defaults, path: path, at: at, allowZero: true) ?? NodeSpec.defaultLayerSyncUS
        let elementwise = try number("elementwise_gbs", fields, defaults, path: path, at: at) ?? NodeSpec.defaultElementwiseGBs
        return NodeSpec(host: host, ranks: ranks, slots: slots, memoryGB: memory, reservedGB: reserved, cores: cores, sockets: sockets,
                        memoryBandwidthGBs: bandwidth, coreBandwidthGBs: coreBW, gemmGFlopsPerCore: gemm, gemvGFlopsPerCore: gemv,
                        streamEfficiency: efficiency, callOverheadUS: overhead, layerOverheadUS: layerOverhead, layerSyncUS: layerSync, elementwiseGBs: elementwise)
    }

    func link(_ node: Node, _ path: String, gigabits: Bool) throws(ClusterError) -> LinkSpec {
        let key = gigabits ? "bandwidth_gbps" : "bandwidth_gbs"
        let m = try mapping(node, path, allowed: [key, "latency_us"])
        guard let bw = try number(key, m, nil, path: path, at: node) else {
            throw error(.missingField, join(path, key), node, "missing field", hint: gigabits ? "link speed in Gbit/s, e.g. bandwidth_gbps: 100" : "GB/s, e.g. bandwidth_gbs: 10")
        }
        guard let lat = try number("latency_us", m, nil, path: path, at: node, allowZero: true) else {
            throw error(.missingField, join(path, "latency_us"), node, "missing field", hint: "one-way message latency in microseconds, e.g. latency_us: 2")
        }
        return LinkSpec(bandwidthGBs: gigabits ? bw / 8 : bw, latencyUS: lat)
    }
}
