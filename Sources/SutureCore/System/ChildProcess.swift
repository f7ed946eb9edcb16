import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs an external tool (`rpm`, `git`, `dpkg-query`, `dpkg`) to completion: standard input from
/// `/dev/null`, standard output and standard error captured, killed with SIGKILL when it outlives its
/// timeout. The one place Suture starts another program and waits for it.
///
/// Built on `Foundation.Process` rather than swift-subprocess: swift-subprocess's API is `async` only,
/// and every caller here is synchronous (the live-state read, the apply run, the bundle builder);
/// bridging would block a thread of Swift's cooperative pool (two threads on a two-core host) on a
/// semaphore, which can deadlock, and making the plan path `async` would change every command.
public enum ChildProcess {
    /// What a finished (or killed) run produced.
    public struct Result: Sendable, Hashable {
        /// The exit status, or 128 + the signal number when it was killed by a signal.
        public var status: Int32
        /// Everything it wrote to standard output.
        public var standardOutput: Data
        /// Everything it wrote to standard error, decoded as UTF-8 (invalid bytes replaced).
        public var standardError: String
        /// True when it was killed because it outlived the timeout.
        public var timedOut: Bool

        /// Standard output decoded as UTF-8 (invalid bytes replaced).
        public var outputText: String { String(decoding: standardOutput, as: UTF8.self) }

        /// True when it exited with status 0 in time.
        public var succeeded: Bool { status == 0 && !timedOut }

        /// `exited 3: <first line of stderr>`, `killed after 10 s`, for error messages.
        public func failureDescription(timeout: Duration) -> String {
            if timedOut { return "killed after \(timeout) (timeout)" }
            let firstLine = standardError.split(separator: "\n").first.map { ": \($0)" } ?? ""
            return "exited \(status)\(firstLine)"
        }
    }

    /// A tool that could not be started.
    public struct LaunchError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The executable path.
        public var executable: String
        /// Why it could not be started.
        public var reason: String
        /// `cannot run /usr/bin/rpm: …`.
        public var description: String { "cannot run \(executable): \(reason)" }
    }

    /// Runs `executable` (an absolute path) with `arguments` and waits for it, at most `timeout`.
    /// - Returns: the exit status and both outputs (also when it failed or was killed).
    /// - Throws: `LaunchError` when it cannot be started (missing, not executable).
    public static func run(
        _ executable: String, _ arguments: [String],
        timeout: Duration = .seconds(30)
    ) throws(LaunchError) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch {
            throw LaunchError(executable: executable, reason: "\(error.localizedDescription)")
        }
        let pid = process.processIdentifier
        let watchdog = Watchdog(pid: pid)
        let timer = DispatchWorkItem { watchdog.fire() }
        let (seconds, attoseconds) = timeout.components
        DispatchQueue.global().asyncAfter(
            deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)),
            execute: timer)
        // Both pipes are drained at once: a tool that fills one while we block on the other would hang.
        let errorData = DataBox()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errorData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        let outputData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        watchdog.finish()
        timer.cancel()
        let status =
            process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus
            : process.terminationStatus
        return Result(
            status: status, standardOutput: outputData,
            standardError: String(decoding: errorData.get(), as: UTF8.self), timedOut: watchdog.fired)
    }

    /// Kills the child with SIGKILL when it fires before the child was waited for.
    private final class Watchdog: @unchecked Sendable {
        private let lock = NSLock()
        private let pid: pid_t
        private var finished = false
        private var didFire = false
        init(pid: pid_t) { self.pid = pid }
        func fire() {
            lock.lock()
            defer { lock.unlock() }
            guard !finished else { return }
            didFire = true
            kill(pid, SIGKILL)
        }
        func finish() {
            lock.lock()
            finished = true
            lock.unlock()
        }
        var fired: Bool {
            lock.lock()
            defer { lock.unlock() }
            return didFire
        }
    }

    private final class DataBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value = Data()
        func set(_ data: Data) {
            lock.lock()
            value = data
            lock.unlock()
        }
        func get() -> Data {
            lock.lock()
            defer { lock.unlock() }
            return value
        }
    }
}
