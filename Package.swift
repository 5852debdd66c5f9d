// swift-tools-version: 6.0
// moerun: serve DeepSeek-V3 / Kimi K2-class MoE models across MPI ranks.
// Target graph follows design/ARCHITECTURE.md section 2; arrows only point "down".
import PackageDescription

// Numerics targets need a CPU level with FMA and wide vectors: without `-target-cpu` the compiler targets
// baseline x86-64 (SSE2) and every SIMD `addProduct` lane becomes a call to `fmaf` (~40x slower; same bits).
// Override with MOERUN_TARGET_CPU (e.g. `native`, `znver4`, or `haswell` for AVX2-only hosts).
#if arch(x86_64)
let targetCPU = ["-target-cpu", Context.environment["MOERUN_TARGET_CPU"] ?? "skylake-avx512"]
#else
let targetCPU: [String] = []
#endif
let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"] + targetCPU, .when(configuration: .release))]

let package = Package(
    name: "moerun",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "moerun", targets: ["moerun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // YAML cluster files (clusters/*.yaml) are decoded in Parallel from bytes (no IO there).
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // The HTTP front end (moerun serve): Hummingbird 2 on SwiftNIO, Prometheus text for /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // Transport: the only place that includes mpi.h; macro handles exposed as inline functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // Transport: Communicator protocol, MPI implementation, in-process thread implementation, watchdog.
        .target(name: "Comm", dependencies: ["CMPI"]),
        // Numerics: dtypes, bit conversions (BF16/F16/FP8), weight views over mapped memory.
        .target(name: "Tensors", swiftSettings: optimized),
        // Numerics: AVX-512 hot loops in C (intrinsics, runtime CPU-feature dispatch); Kernels keeps the Swift twins.
        // No FP contraction: the summation order is part of the batch-invariance contract.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        // Numerics: ops with plain reference twins (matvec, GEMM, norms, RoPE, softmax, SwiGLU).
        .target(name: "Kernels", dependencies: ["Tensors", "CKernels"], swiftSettings: optimized),
        // Checkpoints: safetensors parsing/validation, sharded index, mmap, dtype decoding, writer.
        .target(name: "Checkpoint", dependencies: ["Tensors"]),
        // Family-free model parts: ModelShape (what the planner sees), TensorSpec (what a checkpoint holds), and the
        // blocks every family shares (gated FFN, router, expert dispatch seam, forward events).
        .target(name: "ModelKit", dependencies: ["Kernels", "Tensors"], swiftSettings: optimized),
        // Model: HF config decoding + validation, presets, tensor table, single-device forward math.
        // Presets/*.json are the source of truth for PresetData.swift (scripts/gen-presets.sh), not resources.
        .target(name: "Models", dependencies: ["ModelKit", "Kernels", "Tensors"], exclude: ["Presets"], swiftSettings: optimized),
        // Plan: pure values - stage/expert partitions, cluster descriptions, per-rank memory, cost model, launch lines.
        .target(name: "Parallel", dependencies: ["ModelKit", "Kernels", .product(name: "Yams", package: "Yams")]),
        // Text: tokenizers (tokenizer.json BPE, tiktoken), chat templates (a Jinja interpreter), streamed
        // detokenization and stop strings. Below the engine: no MPI, no model math, no dependencies.
        .target(name: "Text", swiftSettings: optimized),
        // Engine: shard loading, dispatch over Comm, pipeline, scheduler, sampler, tracer, selftest.
        .target(name: "Runtime", dependencies: [
            "Parallel", "Models", "Checkpoint", "Kernels", "Tensors", "Comm", "Text",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: optimized),
        // HTTP front end: an OpenAI-compatible server over the CompletionEngine protocol; no MPI, no Runtime.
        .target(name: "MoerunServer", dependencies: [
            "Text",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // CLI entry point: argument parsing and user output only.
        .executableTarget(name: "moerun", dependencies: [
            "Runtime", "Parallel", "Models", "Text", "MoerunServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Helpers shared by test targets only (locating the built binary, running mpirun, temp dirs).
        .target(name: "TestSupport", dependencies: ["Comm", "Tensors", "Kernels", "Models"], path: "Tests/TestSupport"),

        .testTarget(name: "CommTests", dependencies: ["Comm", "TestSupport"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "Tensors"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensors"]),
        .testTarget(name: "ParallelTests", dependencies: ["Parallel", "Models"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Checkpoint", "Models", "Tensors", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Tensors"]),
        .testTarget(name: "ForwardTests", dependencies: ["Models", "Kernels", "Tensors", "Checkpoint", "TestSupport"]),
        .testTarget(name: "FixtureTests", dependencies: ["Runtime", "Models", "Kernels", "Parallel", "TestSupport"]),
        .testTarget(name: "TextTests", dependencies: ["Text"]),
        .testTarget(name: "MoerunServerTests", dependencies: ["MoerunServer", "Text"]),
        .testTarget(name: "IntegrationTests", dependencies: ["TestSupport", "moerun"]),
    ],
    swiftLanguageModes: [.v6]
)
