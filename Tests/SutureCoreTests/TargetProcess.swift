import Foundation
import SutureTestSupport

/// A real process started from a test binary; killed and reaped by `stop()` (call it in a `defer`).
final class TargetProcess {
    let process = Process()
    private let output = Pipe()
    private var buffered = Data()

    init(_ executable: URL, arguments: [String] = []) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// The next line the process prints, waiting up to `timeout` seconds.
    func readLine(timeout: Double = 60) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = output.fileHandleForReading.fileDescriptor
        while Date() < deadline {
            if let newline = buffered.firstIndex(of: 0x0A) {
                let line = String(decoding: buffered[buffered.startIndex..<newline], as: UTF8.self)
                buffered.removeSubrange(buffered.startIndex...newline)
                return line
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 200) > 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                buffered.append(contentsOf: chunk[0..<n])
            }
        }
        throw GCC.Failure(command: [process.executableURL?.path ?? "?"], status: -1, stderr: "no output line within \(timeout)s")
    }

    func stop() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Polls `condition` every 50 ms for up to `timeout` seconds.
func waitUntil(timeout: Double = 60, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}
