import Foundation
import Testing
@testable import SuturePatching
import SutureTestSupport

/// A target process started by a test with stdin/stdout/stderr pipes; killed on `stop()` or deinit.
final class TargetProcess: @unchecked Sendable {
    let pid: Int32
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private var buffer: [UInt8] = []
    /// Every stdout line read so far.
    private(set) var seen: [String] = []
    private var reaped = false

    init(_ path: String, _ args: [String]) throws {
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw POSIXError(.EMFILE) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in inPipe + outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        // The child must not inherit a real-time policy from a test thread.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        var param = sched_param()
        param.sched_priority = 0
        posix_spawnattr_setschedpolicy(&attr, SCHED_OTHER)
        posix_spawnattr_setschedparam(&attr, &param)
        // Nor a blocked signal mask from the test runner's thread (signals sent to it would stay pending).
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attr, &noSignals)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSCHEDULER | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let r = posix_spawn(&pid, path, &actions, &attr, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attr)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard r == 0 else { throw POSIXError(POSIXErrorCode(rawValue: r) ?? .EINVAL) }
        self.pid = pid
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
        stderrFD = errPipe[0]
        _ = fcntl(stdoutFD, F_SETFL, O_NONBLOCK)
        _ = fcntl(stderrFD, F_SETFL, O_NONBLOCK)
    }

    deinit { stop() }

    /// Sends one line to the target's stdin.
    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
    }

    /// Reads the next stdout line, waiting up to `timeout` seconds; nil on timeout or EOF.
    func readLine(timeout: Double = 30) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeFirst(nl + 1)
                seen.append(line)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress, $0.count) }
            if n > 0 { buffer.append(contentsOf: chunk[0..<n]); continue }
            if n == 0 { return nil }
            if Date() > deadline { return nil }
            var p = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
        }
    }

    /// Reads lines until one starts with `prefix`.
    func waitFor(_ prefix: String, timeout: Double = 30) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let l = readLine(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if l.hasPrefix(prefix) { return l }
        }
        return nil
    }

    /// Everything written to stderr so far.
    func stderrText() -> String {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(stderrFD, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether the process is still running (not exited, not a zombie).
    var isAlive: Bool {
        if reaped { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { reaped = true; return false }
        return kill(pid, 0) == 0
    }

    /// Sends `s` and parses `old=A new=B wrong=C`.
    func counts() -> (old: Int, new: Int, wrong: Int)? {
        send("s")
        guard let l = waitFor("old=") else { return nil }
        var d: [String: Int] = [:]
        for part in l.split(separator: " ") {
            let kv = part.split(separator: "=")
            if kv.count == 2 { d[String(kv[0])] = Int(kv[1]) }
        }
        guard let o = d["old"], let n = d["new"], let w = d["wrong"] else { return nil }
        return (o, n, w)
    }

    /// Waits until a whole counting window saw only the expected result (old or new); returns the last counts.
    func settle(expectNew: Bool, timeout: Double = 30) -> (old: Int, new: Int, wrong: Int)? {
        let deadline = Date().addingTimeInterval(timeout)
        _ = counts() // reset the window
        var last: (old: Int, new: Int, wrong: Int)?
        while Date() < deadline {
            usleep(20_000)
            guard let c = counts() else { return last }
            last = c
            if expectNew ? (c.new > 0 && c.old == 0) : (c.old > 0 && c.new == 0) { return c }
        }
        return last
    }

    /// Kills (SIGKILL) and reaps the process; closes the pipes.
    func stop() {
        if !reaped {
            kill(pid, SIGKILL)
            var st: Int32 = 0
            waitpid(pid, &st, 0)
            reaped = true
            close(stdinFD); close(stdoutFD); close(stderrFD)
        }
    }
}

/// A test patch image: one r-x segment holding machine code assembled by gcc.
struct RawCodeImage: UserPatchImageSource {
    var code: [UInt8]
    var symbols: [String: Int]

    var segments: [UserPatchSegmentSpec] { [UserPatchSegmentSpec(size: code.count, protection: .readExecute)] }

    func linkImage(base: UInt64, targetBase: UInt64, resolveImport: (String) -> UInt64?) throws -> UserPatchLinkedImage {
        UserPatchLinkedImage(segments: [code], replacements: symbols.mapValues { base + UInt64($0) })
    }
}

/// Builds the fixture target and the replacement code once per test into a private directory.
struct EngineFixture {
    let dir: URL
    let target: String
    let buildID: String
    let replacement: [UInt8]

    /// `pie`: build as PIE (default) or `-no-pie`.
    init(pie: Bool = true, name: String = "engine_target", extraFlags: [String] = []) throws {
        dir = try TestSupport.temporaryDirectory("suture-engine")
        let source = TestSupport.fixtures.appendingPathComponent("c/engine_target.c")
        target = dir.appendingPathComponent(name).path
        try runTool("/usr/bin/gcc", ["-O0", "-g", "-pthread", pie ? "-pie" : "-no-pie", pie ? "-fPIE" : "-fno-pie",
                                     // A build-id of its own: tests run in parallel, and a process of another
                                     // fixture with the same build-id would match `patch activate` without --pid.
                                     "-Wl,--build-id=0x" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()]
                                     + extraFlags + ["-o", target, source.path])
        // The replacement: position-independent, self-contained: return 3 * x.
        let newC = dir.appendingPathComponent("compute_v2.c")
        try "long compute_v2(long x) { return x * 3; }\n".write(to: newC, atomically: true, encoding: .utf8)
        let obj = dir.appendingPathComponent("compute_v2.o").path
        try runTool("/usr/bin/gcc", ["-O1", "-fPIC", "-fno-asynchronous-unwind-tables", "-c", "-o", obj, newC.path])
        let bin = dir.appendingPathComponent("compute_v2.bin").path
        try runTool("/usr/bin/objcopy", ["-O", "binary", "--only-section=.text", obj, bin])
        replacement = Array(try Data(contentsOf: URL(fileURLWithPath: bin)))
        buildID = ELFIdentity.read(path: target)?.buildID ?? ""
    }

    /// `(offset from link base, size, file bytes of the whole function)` of `symbol` in the target.
    func symbol(_ name: String) throws -> (offset: UInt64, size: UInt64, bytes: [UInt8]) {
        let out = try runTool("/usr/bin/nm", ["-S", target])
        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 4, f[3] == name, let value = UInt64(f[0], radix: 16), let size = UInt64(f[1], radix: 16) else {
                continue
            }
            let base = ELFIdentity.read(path: target)!.lowestLoadVaddr & ~UInt64(4095)
            // Map the vaddr to a file offset through the PT_LOAD headers (readelf -lW).
            let ph = try runTool("/usr/bin/readelf", ["-lW", target])
            var fileOffset: UInt64?
            for l in ph.split(separator: "\n") where l.trimmingCharacters(in: .whitespaces).hasPrefix("LOAD") {
                let c = l.split(separator: " ", omittingEmptySubsequences: true)
                guard c.count >= 6, let off = UInt64(c[1].dropFirst(2), radix: 16),
                      let va = UInt64(c[2].dropFirst(2), radix: 16), let fsz = UInt64(c[4].dropFirst(2), radix: 16) else { continue }
                if value >= va && value + size <= va + fsz { fileOffset = value - va + off }
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: target))
            // Symbols in .bss have no file bytes.
            guard let fo = fileOffset else { return (value - base, size, []) }
            return (value - base, size, Array(data[Int(fo)..<Int(fo + size)]))
        }
        throw POSIXError(.ENOENT)
    }

    /// The engine request replacing `compute` with `compute_v2`.
    func computeRequest(uuid: String = UUID().uuidString.lowercased()) throws -> UserPatchRequest {
        let s = try symbol("compute")
        let entity = BundleEntityView(targetPath: target, targetBuildID: buildID, functions: [
            .init(symbol: "compute", offset: s.offset, size: s.size, expectedBytes: Array(s.bytes.prefix(16)),
                  replacement: "compute_v2"),
        ])
        return UserPatchRequest(uuid: uuid, entity: entity, image: RawCodeImage(code: replacement, symbols: ["compute_v2": 0]))
    }

    func start(_ args: String...) throws -> TargetProcess {
        let p = try TargetProcess(target, args)
        guard p.waitFor("ready") != nil else {
            let err = p.stderrText()
            p.stop()
            throw POSIXError(.ETIMEDOUT, userInfo: ["stderr": err])
        }
        return p
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }
}

@discardableResult
func runTool(_ path: String, _ args: [String]) throws -> String {
    try GCCRun.run(path, args)
}

/// Runs a helper tool to completion and returns stdout; throws on a non-zero status.
enum GCCRun {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            throw Failure(description: "\(path) \(args.joined(separator: " ")) exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Reads `count` bytes of process memory (test side).
func peek(_ pid: Int32, _ address: UInt64, _ count: Int) -> [UInt8]? {
    Ptrace.readMemory(pid: pid, address: address, count: count)
}
