import Foundation
import SutureTestSupport

/// A copy of a fixture tree from `Tests/Fixtures/kernel/<kernel>/<state>` in a fresh temporary directory,
/// with the empty directories of its `EMPTY_DIRS.txt` recreated (git keeps none).
struct KernelFixture {
    let root: URL

    init(_ kernel: String, _ state: String) throws {
        let source = TestSupport.fixtures.appendingPathComponent("kernel/\(kernel)/\(state)")
        let temp = try TestSupport.temporaryDirectory("kernel-\(kernel)-\(state)")
        root = temp.appendingPathComponent("root")
        try FileManager.default.copyItem(at: source, to: root)
        let list = root.appendingPathComponent("EMPTY_DIRS.txt")
        if let text = try? String(contentsOf: list, encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("/") {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(String(line.dropFirst())),
                                                        withIntermediateDirectories: true)
            }
        }
    }

    var path: String { root.path }

    func remove() { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }
}
