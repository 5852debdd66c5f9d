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
        let probe = ReadProbe(bytes: bytes, pool: ComputePool(threads: threads))
        return Double(bytes) / probe.seconds(passes: 5) / 1e9
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

/// A read-bandwidth probe that keeps its buffer (touched once, from the threads that read it) and runs on a given
/// pool, so it can be taken right before and after each repetition of a benchmark with the benchmark's own threads:
/// on a shared VM the bandwidth changes within seconds (measured here: 33 <-> 55 GB/s on 2 threads), and a ratio is
/// only meaningful against the limit measured at the same moment.
public final class ReadProbe {
    public let bytes: Int
    let pool: ComputePool
    /// Huge-page backed like the weight copies (`PageArena`), so the yardstick streams from the same kind of pages.
    let block: AnyObject
    let raw: UnsafeMutableRawPointer
    /// Slices handed out to the pool's threads (contiguous runs of them per thread).
    static let slices = 256

    public init(bytes: Int = 512 << 20, pool: ComputePool) {
        self.bytes = bytes / ReadProbe.slices * ReadProbe.slices
        self.pool = pool
        (raw, block) = PageArena.ownRegion(byteCount: self.bytes)
        let words = UnsafeTransfer(raw.bindMemory(to: UInt32.self, capacity: self.bytes / 4))
        let perSlice = self.bytes / 4 / ReadProbe.slices
        // First touch from the threads that will read each slice, with float-sized values.
        pool.parallelFor(count: ReadProbe.slices) { range in
            for s in range { for i in (s * perSlice)..<((s + 1) * perSlice) { words.value[i] = 0x3F80_0000 } }
        }
    }

    /// Median seconds of `passes` passes over the whole buffer (every thread reading its run of slices).
    public func seconds(passes: Int) -> Double {
        let base = UnsafeTransfer(UnsafeRawPointer(raw)), slice = bytes / ReadProbe.slices
        var times: [Double] = []
        for _ in 0..<max(passes, 1) {
            times.append(MachineProbe.seconds {
                pool.parallelFor(count: ReadProbe.slices) { range in
                    _ = mr_stream_read(base.value + range.lowerBound * slice, range.count * slice)
                }
            })
        }
        return times.sorted()[times.count / 2]
    }
}
