// Tests for PageArena: blocks are aligned, disjoint and writable; large requests get their own huge-page-aligned
// region; interleaved weight copies made from it hold the same values as their source.
import Testing
@testable import Tensors

@Test func arenaBlocksAreAlignedDisjointAndWritable() {
    let arena = PageArena(regionBytes: 4 << 20)
    var blocks: [(p: UnsafeMutableRawPointer, bytes: Int, owner: AnyObject)] = []
    // Sizes that straddle the region size (several regions) and the own-region threshold (a quarter of it).
    for (k, bytes) in [1, 4096, 65_536, 700_000, 1 << 20, 3, 2 << 20, 64].enumerated() {
        let (p, owner) = arena.allocate(byteCount: bytes, alignment: k % 2 == 0 ? 4096 : 64)
        #expect(Int(bitPattern: p) % (k % 2 == 0 ? 4096 : 64) == 0)
        p.initializeMemory(as: UInt8.self, repeating: UInt8(k + 1), count: bytes)
        blocks.append((p, bytes, owner))
    }
    // Every block still holds its own fill: no two blocks overlap.
    for (k, b) in blocks.enumerated() {
        let bytes = b.p.bindMemory(to: UInt8.self, capacity: b.bytes)
        #expect((0..<b.bytes).allSatisfy { bytes[$0] == UInt8(k + 1) })
    }
    let (big, owner) = arena.allocate(byteCount: 2 << 20)
    #expect(Int(bitPattern: big) % MappedRegion.hugePageBytes == 0)  // its own region: starts on a huge page
    #expect(owner is MappedRegion)
}

@Test func interleavedCopyFromArenaKeepsValues() {
    let rows = 32, cols = 128
    let values = (0..<(rows * cols)).map { Float(($0 * 37) % 101) - 50 }
    let w = Weight.bf16(rows: rows, cols: cols, values)
    let packed = w.interleaved(group: 16)
    #expect(packed.group == 16)
    for r in 0..<rows {
        for c in 0..<cols { #expect(packed.element(r, c) == w.element(r, c)) }
    }
}
