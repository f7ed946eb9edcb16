import Foundation

/// Builds and runs C test programs with the system gcc (tests compile their own real ELF files).
public enum CBuild {
    /// The outcome of running a program to completion.
    public struct Output: Sendable {
        /// Exit status (or 128 + signal).
        public var status: Int32
        /// Standard output, UTF-8.
        public var stdout: String
        /// Standard error, UTF-8.
        public var stderr: String
    }

    /// An error from a failed tool run, with its output.
    public struct Failure: Error, CustomStringConvertible {
        /// What ran and what it printed.
        public var description: String

        /// Creates a failure.
        public init(description: String) { self.description = description }
    }

    /// Runs `executable` with `arguments` to completion, capturing its output.
    /// - Throws: if it cannot be started.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return Output(status: status, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs a tool and throws unless it exits 0.
    /// - Throws: `Failure` with the command line and stderr.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> Output {
        let o = try run(executable, arguments, in: directory)
        guard o.status == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) exited \(o.status):\n\(o.stderr)\(o.stdout)")
        }
        return o
    }

    /// Writes `source` to `directory/name` and runs `gcc args…` there (paths in args are relative to it).
    /// - Returns: the URL of the written source.
    /// - Throws: `Failure` when gcc fails.
    @discardableResult
    public static func gcc(source: String, named name: String, in directory: URL, _ args: [String]) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try source.write(to: url, atomically: true, encoding: .utf8)
        try check("/usr/bin/gcc", args, in: directory)
        return url
    }
}
