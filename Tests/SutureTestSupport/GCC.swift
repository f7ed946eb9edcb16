import Foundation

/// Compiles C sources with the system `gcc` for tests that need real ELF files.
public enum GCC {
    /// An error running gcc (or another helper command): its arguments, exit status and stderr.
    public struct Failure: Error, CustomStringConvertible {
        public var command: [String]
        public var status: Int32
        public var stderr: String
        public var description: String { "\(command.joined(separator: " ")) exited \(status): \(stderr)" }
        public init(command: [String], status: Int32, stderr: String) {
            self.command = command
            self.status = status
            self.stderr = stderr
        }
    }

    /// Writes `source` to `<directory>/<name>.c` and compiles it to `<directory>/<name>` with
    /// `gcc -O1 -g <flags>`; returns the output path.
    ///
    /// - Throws: ``Failure`` when gcc fails.
    @discardableResult
    public static func compile(_ source: String, name: String, in directory: URL, flags: [String] = []) throws -> URL {
        let src = directory.appendingPathComponent("\(name).c")
        let out = directory.appendingPathComponent(name)
        try source.write(to: src, atomically: true, encoding: .utf8)
        try run("/usr/bin/gcc", ["-O1", "-g"] + flags + ["-o", out.path, src.path])
        return out
    }

    /// Runs a command to completion and returns its stdout.
    ///
    /// - Throws: ``Failure`` on a non-zero exit status.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        // Read both pipes before waiting so a chatty child cannot block on a full pipe.
        let errData = LockedData()
        let errThread = Thread { errData.set(errPipe.fileHandleForReading.readDataToEndOfFile()) }
        errThread.start()
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        let stdout = String(decoding: outData, as: UTF8.self)
        if process.terminationStatus != 0 {
            throw Failure(command: [executable] + arguments, status: process.terminationStatus,
                          stderr: String(decoding: errData.value, as: UTF8.self))
        }
        return stdout
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    func set(_ value: Data) { lock.lock(); data = value; done = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}
