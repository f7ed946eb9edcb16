import Foundation

/// Helpers shared by the test targets.
public enum TestSupport {
    /// The package root (the directory holding Package.swift), found from this source file's path.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// `Tests/Fixtures`.
    public static var fixtures: URL { packageRoot.appendingPathComponent("Tests/Fixtures") }

    /// A fresh temporary directory, removed by the caller when done.
    public static func temporaryDirectory(_ prefix: String = "suture-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
