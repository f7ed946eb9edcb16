import Foundation
import SutureTestSupport
import Testing

/// Shared pieces of the `suture build` end-to-end tests: the fetched upstream sources, the `suture` binary
/// with a private state root, and a long-running TCP service answering one-line requests.
enum EndToEnd {
    /// Where `scripts/fetch-e2e-sources` put the upstream trees and fixes (`SUTURE_E2E_SOURCES`, default
    /// `.build/e2e-sources`).
    static var sources: URL {
        if let dir = ProcessInfo.processInfo.environment["SUTURE_E2E_SOURCES"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        return TestSupport.packageRoot.appendingPathComponent(".build/e2e-sources")
    }

    /// True when the fetched sources of `package` and cmake are there (CI fetches them before `swift test`).
    static func available(_ marker: String) -> Bool {
        FileManager.default.fileExists(atPath: sources.appendingPathComponent(marker).path)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/cmake")
    }

    static var suture: String { TestSupport.packageRoot.appendingPathComponent(".build/debug/suture").path }

    /// Runs `suture ARGS` to completion (stdout and stderr captured).
    static func run(_ arguments: [String], in directory: URL? = nil) throws -> CBuild.Output {
        try CBuild.run("/usr/bin/env", ["SUTURE_LOG=stderr", suture] + arguments, in: directory)
    }

    /// `/bin/sh -c COMMAND` in `directory`; throws with its output unless it exits 0.
    @discardableResult
    static func sh(_ command: String, in directory: URL) throws -> CBuild.Output {
        try CBuild.check("/bin/sh", ["-c", command], in: directory)
    }

    /// Waits (polling every 20 ms, up to `seconds`) for `condition`.
    static func waitUntil(_ seconds: Double = 60, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}

/// A private state root for `suture apply` (store, journal, generations, lock), with `proc` and `sys`
/// linked to the real ones so the live-state readers see real processes.
struct PrivateRoot {
    let root: URL
    var manifests: URL { root.appendingPathComponent("work/manifests") }

    init(_ parent: URL) throws {
        root = parent.appendingPathComponent("root")
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("work/manifests"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("proc").path, withDestinationPath: "/proc")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("sys").path, withDestinationPath: "/sys")
    }

    /// Writes the one manifest: `name` from `bundle`, pinned to `sha256`, in `state`, for the file `target`.
    func manifest(name: String, bundle: String, sha256: String, state: String, target: String) throws {
        let text = """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata:
              name: e2e
            spec:
              patches:
                - name: \(name)
                  bundle: \(bundle)
                  sha256: \(sha256)
                  state: \(state)
                  target:
                    path: \(target)

            """
        try text.write(to: manifests.appendingPathComponent("e2e.yaml"), atomically: true, encoding: .utf8)
    }

    /// `suture apply MANIFESTS --root ROOT`.
    func apply() throws -> CBuild.Output { try EndToEnd.run(["apply", manifests.path, "--root", root.path]) }
}

/// A service under test: started on a free loopback port, asked one line per connection.
final class LineService: @unchecked Sendable {
    private(set) var port = 0

    /// Starts `binary PORT` (environment added to ours) and waits until it answers `probe`.
    init(binary: URL, probe: String, environment: [String: String] = [:]) throws {
        var lastError = "did not start"
        for _ in 0..<20 {
            let p = Process()
            p.executableURL = binary
            port = Int.random(in: 20000...60000)
            p.arguments = ["\(port)"]
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if EndToEnd.waitUntil(30, { !p.isRunning || (try? self.ask(probe)) != nil }), p.isRunning {
                running = p
                return
            }
            lastError = "exited \(p.terminationStatus)"
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        throw CBuild.Failure(description: "\(binary.path): \(lastError)")
    }

    private var running: Process?
    var pid: Int32 { running?.processIdentifier ?? 0 }
    var isRunning: Bool { running?.isRunning ?? false }

    /// Sends `request` and returns the answer line.
    func ask(_ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CBuild.Failure(description: "socket") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw CBuild.Failure(description: "connect to \(port)") }
        _ = Array((request + "\n").utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, 0) == 1 {
            if byte == 0x0a { break }
            answer.append(byte)
        }
        guard !answer.isEmpty else { throw CBuild.Failure(description: "no answer to \(request)") }
        return String(decoding: answer, as: UTF8.self)
    }

    /// SIGKILL (a child of a test thread inherits its blocked signals) and wait.
    func stop() {
        if let p = running, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            _ = EndToEnd.waitUntil(30) { !p.isRunning }
        }
    }

    deinit { stop() }
}
