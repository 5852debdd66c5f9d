// PageArena: memory for the weight copies the decode kernels stream (and for the read probe that is their yardstick),
// carved from 2 MB-aligned anonymous mappings marked for transparent huge pages (madvise MADV_HUGEPAGE). Streaming a
// 4 KB-paged buffer costs a TLB miss per page and stops the hardware prefetcher at every page edge; measured on this
// machine's class (Zen 4 VM, THP "madvise"): one thread read 21-26 -> 27-32 GB/s, two threads 26-32 -> 31-35 GB/s.
// Where the kernel gives no huge pages (THP "never", other systems) the mappings are plain pages: same results.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// One anonymous mapping of at least `byteCount` bytes starting on a `hugePageBytes` boundary; unmapped on deinit.
public final class MappedRegion: @unchecked Sendable {
    public let raw: UnsafeMutableRawPointer
    public let byteCount: Int
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int

    /// Size and alignment of a transparent huge page on x86-64 and arm64 Linux (4 KB base pages).
    public static let hugePageBytes = 2 << 20

    /// Maps `byteCount` bytes (rounded up to whole huge pages) and asks for huge pages; nil if the mapping fails.
    public init?(byteCount: Int) {
        let huge = MappedRegion.hugePageBytes
        let size = max(1, ceilDiv(byteCount, huge)) * huge
        // One huge page of slack so the start can be moved to a huge-page boundary; the slack is unmapped again.
        guard let p = mmap(nil, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else { return nil }
        let start = (Int(bitPattern: p) + huge - 1) / huge * huge
        let head = start - Int(bitPattern: p), tail = huge - head
        if head > 0 { munmap(p, head) }
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + size)!, tail) }
        base = UnsafeMutableRawPointer(bitPattern: start)!
        mappedBytes = size
        raw = base
        self.byteCount = byteCount
        #if os(Linux)
        _ = madvise(base, size, MADV_HUGEPAGE)  // advisory: EINVAL where THP is compiled out
        #endif
    }

    deinit { munmap(base, mappedBytes) }
}

/// Bump allocation of weight copies from shared huge-page regions: small matrices (a 64 KB per-head slice) share
/// a region instead of each rounding up to 2 MB. A region is unmapped once no block cut from it is alive.
public final class PageArena: Sendable {
    /// The arena for weight copies made at load (`Weight.interleaved`).
    public static let weights = PageArena(regionBytes: 64 << 20)

    /// Bytes per shared region; requests above a quarter of it get a region of their own.
    public let regionBytes: Int
    private let current = Mutex<(region: MappedRegion?, used: Int)>((nil, 0))

    public init(regionBytes: Int) {
        self.regionBytes = max(regionBytes, MappedRegion.hugePageBytes)
    }

    /// `byteCount` bytes aligned to `alignment` (a power of two up to 4096), and the object that keeps them mapped.
    /// Falls back to an ordinary heap block when no mapping can be made.
    public func allocate(byteCount: Int, alignment: Int = 4096) -> (UnsafeMutableRawPointer, AnyObject) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0 && alignment <= 4096, "alignment must be a power of two <= 4096")
        if byteCount > regionBytes / 4 { return PageArena.ownRegion(byteCount: byteCount) }
        let cut: (UnsafeMutableRawPointer, AnyObject)? = current.withLock { state in
            var offset = (state.used + alignment - 1) / alignment * alignment
            if state.region == nil || offset + byteCount > regionBytes {
                guard let fresh = MappedRegion(byteCount: regionBytes) else { return nil }
                state.region = fresh
                offset = 0
            }
            state.used = offset + byteCount
            return (state.region!.raw + offset, state.region!)
        }
        return cut ?? PageArena.heap(byteCount)
    }

    /// `byteCount` bytes in a huge-page region of their own (a large weight, the read probe's buffer), 4096-aligned
    /// heap memory when no mapping can be made; and the object that keeps them.
    public static func ownRegion(byteCount: Int) -> (UnsafeMutableRawPointer, AnyObject) {
        if let own = MappedRegion(byteCount: byteCount) { return (own.raw, own) }
        return heap(byteCount)
    }

    private static func heap(_ byteCount: Int) -> (UnsafeMutableRawPointer, AnyObject) {
        let block = HeapBlock(byteCount: byteCount, alignment: 4096)
        return (block.raw, block)
    }
}
