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
        ReadProbe(bytes: bytes, threads: threads).measure(passes: 5)
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

/// A read-bandwidth probe that keeps its buffer (touched once, from the threads that read it), so it can be
/// measured repeatedly without paying the page faults again.
public final class ReadProbe {
    let bytes: Int
    let pool: ComputePool
    let block: HeapBlock
    static let slices = 256

    public init(bytes: Int = 512 << 20, threads: Int) {
        self.bytes = bytes / Self.slices / 256 * Self.slices * 256
        pool = ComputePool(threads: threads)
        block = HeapBlock(byteCount: self.bytes, alignment: 4096)
        let words = block.raw.bindMemory(to: UInt32.self, capacity: self.bytes / 4)
        // First touch from the threads that will read each slice (page placement), with float-sized values.
        let base = UnsafeTransfer(words), perSlice = self.bytes / 4 / Self.slices
        pool.parallelFor(count: Self.slices) { range in
            for s in range { for i in (s * perSlice)..<((s + 1) * perSlice) { base.value[i] = 0x3F80_0000 } }
        }
    }

    /// Median GB/s of `passes` full passes over the buffer.
    public func measure(passes: Int = 3) -> Double {
        let raw = UnsafeTransfer(UnsafeRawPointer(block.raw)), perSlice = bytes / Self.slices
        var times: [Double] = []
        for _ in 0..<max(passes, 1) {
            times.append(MachineProbe.seconds {
                pool.parallelFor(count: Self.slices) { range in
                    _ = mr_stream_read(raw.value + range.lowerBound * perSlice, range.count * perSlice)
                }
            })
        }
        return Double(bytes) / times.sorted()[times.count / 2] / 1e9
    }
}
