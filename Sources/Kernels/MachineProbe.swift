// MachineProbe: this machine's measured limits (read bandwidth, fp32 FMA and bf16 dot-product peaks) at a
// given thread count, so benchmarks report ratios against limits measured in the same run.
import CKernels
import Dispatch
import Tensors

public enum MachineProbe {
    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Read bandwidth in GB/s of `threads` threads streaming disjoint slices of a `bytes` buffer (larger than the
    /// caches); median of 5 passes.
    public static func readBandwidth(bytes: Int = 512 << 20, threads: Int) -> Double {
        let pool = ComputePool(threads: threads)
        let block = HeapBlock(byteCount: bytes, alignment: 4096)
        let words = block.raw.bindMemory(to: UInt32.self, capacity: bytes / 4)
        // Touch every page from the threads that will read it (first-touch placement), with float-sized values.
        let slices = 256
        let base = UnsafeTransfer(words)
        pool.parallelFor(count: slices) { range in
            for s in range { for i in (s * bytes / 4 / slices)..<((s + 1) * bytes / 4 / slices) { base.value[i] = 0x3F80_0000 } }
        }
        var times: [Double] = []
        for _ in 0..<5 {
            times.append(seconds {
                pool.parallelFor(count: slices) { range in
                    let lo = range.lowerBound * (bytes / slices), hi = range.upperBound * (bytes / slices)
                    _ = mr_stream_read(UnsafeRawPointer(base.value) + lo, hi - lo)
                }
            })
        }
        return Double(bytes) / times.sorted()[2] / 1e9
    }

    /// Peak GFLOP/s of `threads` threads running register-only fp32 FMAs (0 without AVX-512).
    public static func fp32FMAPeak(threads: Int) -> Double { peak(threads: threads, mr_probe_fp32_fma_flops) }

    /// Peak GFLOP/s of `threads` threads running bf16 dot products (`vdpbf16ps`; 0 without AVX-512 BF16).
    public static func bf16DotPeak(threads: Int) -> Double { peak(threads: threads, mr_probe_bf16_dot_flops) }

    static func peak(threads: Int, _ probe: @convention(c) (Int) -> Double) -> Double {
        let perIteration = probe(1)  // FLOPs of one iteration; 0 = instruction set missing
        if perIteration == 0 { return 0 }
        let pool = ComputePool(threads: threads)
        let iterations = 10_000_000
        var best = 0.0
        for _ in 0..<3 {
            let t = seconds { pool.parallelFor(count: threads) { _ in _ = probe(iterations) } }
            best = max(best, Double(threads) * perIteration * Double(iterations) / t / 1e9)
        }
        return best
    }
}

