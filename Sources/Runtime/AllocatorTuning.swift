// Allocator tuning for the forward pass: every step allocates multi-MB activation buffers; with glibc's default
// mmap threshold each one is a fresh mapping whose pages fault in zeroed (measured: ~25% of a small model's
// prefill in page faults under a VM). Keeping them on the heap reuses warm pages.
import CKernels
import Foundation

public enum AllocatorTuning {
    /// Raise glibc's mmap threshold to its maximum (32 MB) and keep freed heap memory instead of trimming it.
    /// Skipped when the user set any MALLOC_*_ variable (their choice wins). No-op off glibc.
    public static func configure() {
        let env = ProcessInfo.processInfo.environment
        guard !env.keys.contains(where: { $0.hasPrefix("MALLOC_") && $0.hasSuffix("_") }) else { return }
        _ = mr_tune_allocator()
    }
}
