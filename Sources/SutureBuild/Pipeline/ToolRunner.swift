import Foundation

/// Runs the external programs of the pipeline (the build command, `cp`, `patch`) as child processes.
enum ToolRunner {
    /// The outcome of one run.
    struct Outcome {
        /// Exit status, or 128 + signal number when killed.
        var status: Int32
        /// Captured standard output + standard error (empty when they went to a log file).
        var output: String
    }

    /// Runs `executable arguments` in `directory` with `environment` (the whole environment), sending
    /// stdout and stderr to `log` (appended) or capturing them when `log` is nil.
    /// - Throws: `BuildError` when the program cannot be started.
    static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil,
                    environment: [String: String]? = nil, log: URL? = nil) throws(BuildError) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        var capture: URL?
        let sink: URL
        if let log {
            sink = log
        } else {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("suture-tool-\(UUID().uuidString)")
            capture = file
            sink = file
        }
        defer { if let capture { try? FileManager.default.removeItem(at: capture) } }
        do {
            if !FileManager.default.fileExists(atPath: sink.path) {
                FileManager.default.createFile(atPath: sink.path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: sink)
            defer { try? handle.close() }
            try handle.seekToEnd()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            process.waitUntilExit()
        } catch {
            throw BuildError("cannot run \(executable): \(error.localizedDescription)")
        }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        let output = capture.flatMap { try? String(contentsOf: $0, encoding: .utf8) } ?? ""
        return Outcome(status: status, output: output)
    }

    /// `cp -a SOURCE/. DESTINATION` (DESTINATION created; contents, modes and timestamps kept).
    /// - Throws: `BuildError` naming both directories and cp's message.
    static func copyTree(_ source: URL, to destination: URL) throws(BuildError) {
        do {
            try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        } catch {
            throw BuildError("cannot create \(destination.path): \(error.localizedDescription)")
        }
        let out = try run("/bin/cp", ["-a", source.path + "/.", destination.path])
        guard out.status == 0 else {
            throw BuildError("cannot copy \(source.path) to \(destination.path): \(out.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Removes a directory tree if it exists.
    /// - Throws: `BuildError` when it cannot be removed.
    static func remove(_ directory: URL) throws(BuildError) {
        guard FileManager.default.fileExists(atPath: directory.path) else { return }
        let out = try run("/bin/rm", ["-rf", directory.path])
        guard out.status == 0 else {
            throw BuildError("cannot remove \(directory.path): \(out.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// The last `count` lines of a text file (for build failure messages).
    static func tail(_ file: URL, lines count: Int = 20) -> String {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(count + 1).joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
