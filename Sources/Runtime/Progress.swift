// ProgressMeter: progress of long work on rank 0 — a redrawn bar with rate and ETA on a terminal, plain
// lines (about every 10% or 2 s) when stderr is a file or pipe, so logs stay readable.
import Foundation

public final class ProgressMeter {
    public let label: String
    public let total: Int
    /// Renders amounts (bytes by default).
    public let format: (Int) -> String
    private let enabled: Bool
    private let isTTY: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastPercent = -100.0

    public init(label: String, total: Int, enabled: Bool = true, format: @escaping (Int) -> String = ProgressMeter.bytes) {
        self.label = label
        self.total = max(total, 1)
        self.format = format
        self.enabled = enabled
        self.isTTY = isatty(2) != 0
    }

    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }

    public static func count(_ n: Int) -> String { "\(n)" }

    public func update(_ done: Int) {
        guard enabled else { return }
        let now = Date()
        let percent = 100 * Double(done) / Double(total)
        let elapsed = now.timeIntervalSince(start)
        // Work that finishes within a second gets only the final line.
        guard elapsed >= 1 else { return }
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let text = String(format: "%3.0f%% ", percent) + "\(format(done))/\(format(total)) \(format(Int(rate)))/s ETA "
            + String(format: "%.0fs", eta)
        if isTTY {
            guard now.timeIntervalSince(lastDraw) >= 0.1 || done >= total else { return }
            let width = 30, filled = Int(Double(width) * Double(done) / Double(total))
            let bar = String(repeating: "#", count: min(filled, width)) + String(repeating: " ", count: max(width - filled, 0))
            FileHandle.standardError.write("\r\(label) [\(bar)] \(text)\u{1B}[K".data(using: .utf8)!)
        } else {
            guard percent - lastPercent >= 10 || now.timeIntervalSince(lastDraw) >= 2 else { return }
            lastPercent = percent
            FileHandle.standardError.write("\(label): \(text)\n".data(using: .utf8)!)
        }
        lastDraw = now
    }

    /// Final line (on a terminal, ends the redrawn bar).
    public func finish(_ summary: String) {
        guard enabled else { return }
        let seconds = Date().timeIntervalSince(start)
        FileHandle.standardError.write(((isTTY ? "\r\u{1B}[K" : "") + "\(label): \(summary) in " + String(format: "%.1f s", seconds) + "\n").data(using: .utf8)!)
    }
}
