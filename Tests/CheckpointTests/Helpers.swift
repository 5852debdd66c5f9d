// Test helpers: temp dirs, raw safetensors files with hand-written headers, writer-made files.
import Foundation
@testable import Checkpoint
import Tensors

/// A fresh temp directory, removed by the caller's `defer`.
func makeTempDir(_ tag: String = #function) -> String {
    let safe = tag.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "moerun-ckpt-\(safe)-\(UUID().uuidString.prefix(8))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDir(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

/// Writes a file made of an 8-byte length prefix, `header` verbatim (length = its byte count unless
/// `declaredLength` lies) and `data`.
func writeRaw(_ path: String, header: String, data: [UInt8], declaredLength: UInt64? = nil) {
    var bytes: [UInt8] = []
    let h = Array(header.utf8)
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { bytes.append(contentsOf: $0) }
    bytes += h
    bytes += data
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// Bytes of Float values (little-endian F32).
func f32Bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Deterministic pseudo-random floats in [-amplitude, amplitude).
func randomFloats(_ n: Int, seed: UInt64, amplitude: Float = 1) -> [Float] {
    var s = seed &+ 0x9E3779B97F4A7C15
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * amplitude
    }
}

/// One tensor for `writeFile`: declaration plus its raw bytes.
struct TensorBlob {
    let decl: TensorDeclaration
    let bytes: [UInt8]
    init(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) {
        decl = TensorDeclaration(name: name, dtype: dtype, shape: shape)
        self.bytes = bytes
    }
}

/// Writes a valid safetensors file with the real writer.
func writeFile(_ path: String, _ tensors: [TensorBlob]) throws {
    let w = try SafetensorsWriter(path: path, declarations: tensors.map(\.decl))
    for t in tensors { try w.write(values: t.bytes) }
    try w.finish()
}

/// Reference 128x128 block quantization (scale = amax/448, codes = e4m3(x / scale)), independent of Tensors' helper.
func quantizeReference(_ values: [Float], rows: Int, cols: Int) -> (codes: [UInt8], scales: [Float]) {
    let gr = (rows + 127) / 128, gc = (cols + 127) / 128
    var scales = [Float](repeating: 1, count: gr * gc)
    var codes = [UInt8](repeating: 0, count: rows * cols)
    for br in 0..<gr {
        for bc in 0..<gc {
            var amax: Float = 0
            for r in (br * 128)..<min(rows, br * 128 + 128) {
                for c in (bc * 128)..<min(cols, bc * 128 + 128) { amax = max(amax, abs(values[r * cols + c])) }
            }
            let s: Float = amax > 0 ? amax / 448 : 1
            scales[br * gc + bc] = s
            for r in (br * 128)..<min(rows, br * 128 + 128) {
                for c in (bc * 128)..<min(cols, bc * 128 + 128) { codes[r * cols + c] = floatToFP8E4M3(values[r * cols + c] / s) }
            }
        }
    }
    return (codes, scales)
}

/// Captures the CheckpointError of an operation (nil if it succeeded).
func checkpointError(_ body: () throws -> Void) -> CheckpointError? {
    do { try body() } catch let e as CheckpointError { return e } catch { return nil }
    return nil
}
