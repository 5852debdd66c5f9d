// Throughput probe for Ops.linear (run only with MOERUN_BENCH=1, in release:
//   MOERUN_BENCH=1 swift test -c release --filter linearThroughput).
import Foundation
import Testing
import Kernels
import Tensors

@Test(.enabled(if: ProcessInfo.processInfo.environment["MOERUN_BENCH"] == "1"))
func linearThroughput() {
    let rows = 8192, cols = 7168
    var rng = SeededRandom(1)
    let values = rng.floats(rows * cols, 0.05)
    let weights: [(String, Weight)] = [("bf16", .bf16(rows: rows, cols: cols, values)), ("fp8", .fp8(rows: rows, cols: cols, values))]
    func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
    for (name, w) in weights {
        for threads in [1, 2] {
            let pool = ComputePool(threads: threads)
            for tokens in [1, 4, 32] {
                let x = Matrix(rows: tokens, cols: cols, data: rng.floats(tokens * cols))
                _ = Ops.linear(x, w, pool: pool)
                let reps = tokens == 1 ? 10 : 3
                var t = Double.infinity
                for _ in 0..<reps { t = min(t, seconds { _ = Ops.linear(x, w, pool: pool) }) }
                let gbs = Double(w.byteCount) / t / 1e9
                let gflops = 2 * Double(rows * cols * tokens) / t / 1e9
                print(String(format: "BENCH %@ threads=%d T=%d: %.2f ms (min), weights %.1f GB/s, %.1f GFLOP/s",
                             name, threads, tokens, t * 1e3, gbs, gflops))
            }
        }
    }
}
