// MappedFile / SafetensorsFile: one shard, header read with pread at open, bytes mmapped (PROT_READ,
// MAP_PRIVATE) only when a tensor is first requested, so untouched tensors never become resident.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Tensors

/// A read-only private mapping of a whole file. Pages become resident only when read.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let size: Int

    init(path: String, size: Int, displayName: String) throws(CheckpointError) {
        self.path = path
        self.size = size
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw CheckpointError(.notFound, file: displayName, "cannot open (\(String(cString: strerror(errno))))",
                                  hint: "check the path and permissions")
        }
        defer { close(fd) }
        let p = mmap(nil, max(size, 1), PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw CheckpointError(.ioError, file: displayName, "mmap failed (\(String(cString: strerror(errno))))",
                                  hint: "the file system must support mmap; check free address space")
        }
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), max(size, 1)) }
}

extension MappedFile: PageReleasing {
    /// MADV_DONTNEED on a read-only file mapping only unmaps pages (the page cache keeps them; a later read faults
    /// them back in), so it is safe even if another view still reads these bytes.
    public func releasePages(_ p: UnsafeRawPointer, _ bytes: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: p) + page - 1) / page * page, end = (Int(bitPattern: p) + bytes) / page * page
        let lo = Int(bitPattern: base), hi = lo + size
        guard end > start, start >= lo, end <= hi else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
    }
}

extension MappedFile {
    /// Bytes of this mapping resident in this process's page tables (the `Rss:` of its /proc/self/smaps entry).
    /// Unlike mincore, this ignores page-cache pages the process never touched (e.g. just written by synth).
    public func residentBytes() -> Int {
        guard let text = readProcFile("/proc/self/smaps") else { return 0 }
        var inside = false
        var total = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit), line.contains(" ") {
                // A mapping header line; a file mapping may be split into several VMAs, so match our range.
                let lo = UInt(line[..<dash], radix: 16) ?? 0
                let mine = UInt(bitPattern: Int(bitPattern: base))
                inside = lo >= mine && lo < mine + UInt(max(size, 1))
                continue
            }
            if inside && line.hasPrefix("Rss:") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                if parts.count >= 2, let kb = Int(parts[1]) { total += kb * 1024 }
            }
        }
        return total
    }
}

/// One safetensors shard: validated header plus a lazily created mapping.
public final class SafetensorsFile: @unchecked Sendable {
    /// Path on disk.
    public let path: String
    /// Name used in messages (the shard file name).
    public let displayName: String
    public let fileSize: Int
    public let header: SafetensorsHeader

    private let lock = NSLock()
    private var mapping: MappedFile?

    /// Opens `path`, reads and validates only the header (two preads); maps nothing yet.
    public init(path: String, displayName: String? = nil) throws(CheckpointError) {
        self.path = path
        let name = displayName ?? (path as NSString).lastPathComponent
        self.displayName = name
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw CheckpointError(.notFound, file: name, "cannot open \(path) (\(reason))",
                                  hint: "check that the file exists and is readable")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw CheckpointError(.ioError, file: name, "fstat failed", hint: "check the file system")
        }
        fileSize = Int(st.st_size)
        var prefix: UInt64 = 0
        if fileSize >= 8 {
            let got = withUnsafeMutableBytes(of: &prefix) { pread(fd, $0.baseAddress, 8, 0) }
            guard got == 8 else {
                throw CheckpointError(.ioError, file: name, "could not read the 8-byte header length", hint: "check the file system")
            }
        }
        let n = try SafetensorsHeader.headerLength(prefix: UInt64(littleEndian: prefix), fileSize: fileSize, file: name)
        var json = Data(count: n)
        let read = json.withUnsafeMutableBytes { buf -> Int in
            var done = 0
            while done < n {
                let r = pread(fd, buf.baseAddress! + done, n - done, off_t(8 + done))
                if r <= 0 { break }
                done += r
            }
            return done
        }
        guard read == n else {
            throw CheckpointError(.truncatedFile, file: name, "header of \(n) bytes could not be read (got \(read))",
                                  hint: "the file was cut short; fetch it again")
        }
        header = try SafetensorsHeader.parse(json: json, headerLength: n, fileSize: fileSize, file: name)
    }

    /// Whether the file has been mapped (a tensor of it was requested).
    public var isMapped: Bool { lock.withLock { mapping != nil } }

    /// The mapping, created on first use.
    public func mapped() throws(CheckpointError) -> MappedFile {
        lock.lock()
        defer { lock.unlock() }
        if let mapping { return mapping }
        let m = try MappedFile(path: path, size: fileSize, displayName: displayName)
        mapping = m
        return m
    }

    /// Raw bytes of a tensor inside the mapping (zero copy), with the mapping that owns them.
    public func bytes(of entry: TensorEntry) throws(CheckpointError) -> (UnsafeRawBufferPointer, MappedFile) {
        let m = try mapped()
        let start = header.dataStart + entry.begin
        return (UnsafeRawBufferPointer(start: m.base + start, count: entry.byteCount), m)
    }

    /// Resident bytes of this file's mapping (0 if never mapped).
    public func residentBytes() -> Int {
        guard let m = lock.withLock({ mapping }) else { return 0 }
        return m.residentBytes()
    }
}

/// Reads a /proc file with read(2) until EOF (stat reports size 0 there, so size-based readers get nothing).
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
