import Foundation

/// Who holds the run lock: written as JSON into the lock file by the holder.
///
/// Shape: `{"pid": 1234, "command": "suture apply examples/manifests", "started": "2026-11-29T19:30:00Z",
/// "hostname": "web-1"}`.
public struct LockHolder: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Process id of the holder.
    public var pid: Int32
    /// The holder's command line, space-joined.
    public var command: String
    /// When the holder took the lock (ISO 8601, UTC).
    public var started: String
    /// Host name of the holder.
    public var hostname: String

    /// Memberwise initializer.
    public init(pid: Int32, command: String, started: String, hostname: String = "") {
        self.pid = pid
        self.command = command
        self.started = started
        self.hostname = hostname
    }

    /// The holder of this process: pid, `CommandLine.arguments`, now.
    public static func current() -> LockHolder {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let args = CommandLine.arguments
        let command = ([URL(fileURLWithPath: args.first ?? "suture").lastPathComponent] + args.dropFirst())
            .joined(separator: " ")
        return LockHolder(pid: getpid(), command: command, started: isoTimestamp(Date()),
                          hostname: String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
                                           as: UTF8.self))
    }

    /// `pid 1234 (suture apply examples/manifests), since 2026-11-29T19:30:00Z`.
    public var description: String { "pid \(pid) (\(command)), since \(started)" }
}

/// The lock could not be taken.
public struct LockError: Error, Sendable, CustomStringConvertible {
    /// Why.
    public enum Reason: Sendable, Hashable {
        /// Another process holds it; `holder` is what it wrote (nil if unreadable or not yet written).
        case busy(holder: LockHolder?, waited: Double)
        /// The lock file could not be created or opened.
        case io(String)
    }
    /// The lock file path.
    public var path: String
    /// Why.
    public var reason: Reason

    /// `lock /run/suture/lock is held by pid 1234 (suture apply …), since …; waited 0 s (--lock-timeout)`.
    public var description: String {
        switch reason {
        case let .busy(holder, waited):
            let who = holder.map { "held by \($0)" } ?? "held by another process (holder info unreadable)"
            return "another suture run is in progress: lock \(path) is \(who); waited "
                + String(format: "%.1f", waited) + " s (use --lock-timeout SECONDS to wait longer)"
        case let .io(message):
            return "cannot open lock \(path): \(message)"
        }
    }
}

/// The run lock: an exclusive `flock(2)` on `<root>/run/suture/lock`, held for the whole run.
///
/// The file holds the holder's `LockHolder` JSON so a contender can name it. `flock` locks are released
/// by the kernel when the holder exits, even on `kill -9`; a stale JSON left behind is simply overwritten
/// by the next holder. Mirrors Terraform's state lock info (ID, Path, Operation, Who, Created).
public final class RunLock: @unchecked Sendable {
    /// The lock file path.
    public let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock, waiting up to `timeout` (`.zero`: try once), polling every 50 ms.
    /// - Parameters:
    ///   - paths: the state layout (the lock is `paths.lock`).
    ///   - timeout: how long to wait for a busy lock.
    ///   - holder: what to write into the lock file.
    /// - Throws: `LockError` (`busy` naming the holder, or `io`).
    public static func acquire(paths: StatePaths, timeout: Duration = .zero,
                               holder: LockHolder = .current()) throws(LockError) -> RunLock {
        let path = paths.lock
        do { try makeDirectories((path as NSString).deletingLastPathComponent) } catch {
            throw LockError(path: path, reason: .io("\(error)"))
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            let code = errno
            throw LockError(path: path, reason: .io(errnoText(code) + runAsRootHint(code)))
        }
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { break }
            let err = errno
            if err != EWOULDBLOCK && err != EINTR {
                close(fd)
                throw LockError(path: path, reason: .io("flock: \(errnoText(err))"))
            }
            let elapsed = clock.now - start
            if elapsed >= timeout {
                let waited = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let current = RunLock.readHolder(path: path)
                close(fd)
                throw LockError(path: path, reason: .busy(holder: current, waited: waited))
            }
            usleep(50_000)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = (try? encoder.encode(holder)) ?? Data()
        data.append(0x0a)
        _ = ftruncate(fd, 0)
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return RunLock(path: path, fd: fd)
    }

    /// The holder info currently in the lock file, or nil when empty or unreadable.
    public static func readHolder(path: String) -> LockHolder? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        return try? JSONDecoder().decode(LockHolder.self, from: data)
    }

    /// Clears the holder info and releases the lock. Idempotent.
    public func release() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}

/// ISO 8601 UTC timestamp with seconds (`2026-11-29T19:30:00Z`).
public func isoTimestamp(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: date)
}
