import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// The demo service (examples/demo), built by the test, started, and patched by `suture apply`.
final class DemoService: @unchecked Sendable {
    let dir: URL
    let bundle: URL
    let binary: URL
    private(set) var process: Process?
    private(set) var port: Int = 0

    /// Copies examples/demo into `work`, builds the server, the payload and the bundle.
    init(work: URL) throws {
        dir = work.appendingPathComponent("demo")
        bundle = work.appendingPathComponent("bundles/demo-fix")
        binary = dir.appendingPathComponent("demo-server")
        try FileManager.default.copyItem(at: TestSupport.packageRoot.appendingPathComponent("examples/demo"), to: dir)
        // Build products in the checkout (e.g. from scripts/demo-up) must not be reused: each test needs its own
        // build (its own build-id, since -g records the build directory), or the tests' scans match each
        // other's processes.
        for product in ["demo-server", "fix.o"] { try? FileManager.default.removeItem(at: dir.appendingPathComponent(product)) }
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        make.arguments = ["-s", "-C", dir.path, "bundle", "SUTURE=\(Suture.binary)", "BUNDLE=\(bundle.path)"]
        make.standardOutput = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        guard make.terminationStatus == 0 else { throw DemoError(message: "make bundle failed") }
    }

    /// Starts the server on a free port and waits until it answers.
    func start() throws {
        for _ in 0..<20 {
            let p = Process()
            p.executableURL = binary
            port = Int.random(in: 20000...60000)
            p.arguments = ["\(port)"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            if waitUntil(20, { !p.isRunning || (try? self.ask("STATS")) != nil }), p.isRunning {
                process = p
                return
            }
            if p.isRunning { p.terminate() }
        }
        throw DemoError(message: "demo-server did not start")
    }

    var pid: Int32 { process?.processIdentifier ?? 0 }
    var isRunning: Bool { process?.isRunning ?? false }

    /// Sends one request line and returns the answer line (without newline).
    func ask(_ command: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DemoError(message: "socket") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw DemoError(message: "connect") }
        let line = Array((command + "\n").utf8)
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, 0) == 1 {
            if byte == 0x0a { break }
            answer.append(byte)
        }
        _ = Array("QUIT\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard !answer.isEmpty else { throw DemoError(message: "no answer") }
        return String(decoding: answer, as: UTF8.self)
    }

    /// True when the crafted request is refused (the fix is live).
    func isFixed() throws -> Bool { try ask("GET 4").hasPrefix("ERR") }

    /// Kills the server (SIGKILL: a child spawned from a test thread inherits that thread's blocked
    /// signals, SIGTERM included) and waits for it to be gone.
    func stop() {
        if let p = process, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            _ = waitUntil(30) { !p.isRunning }
        }
    }

    deinit { stop() }
}

struct DemoError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Holds `PTRACE_SEIZE` on a process (python ctypes) so that any other tracer's attach fails: proves
/// that a run attaches to no process.
final class TracerHold {
    let process: Process
    init(pid: Int32, readyFile: URL) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import ctypes, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
            if libc.ptrace(0x4206, \(pid), None, None) != 0:
                sys.exit(3)
            open('\(readyFile.path)', 'w').write('ok')
            time.sleep(600)
            """]
        try process.run()
        guard waitUntil(30, { FileManager.default.fileExists(atPath: readyFile.path) || !self.process.isRunning }),
              process.isRunning else { throw DemoError(message: "tracer did not attach") }
    }
    func release() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            _ = waitUntil(30) { !self.process.isRunning }
        }
    }
}

@Suite struct DemoApplyTests {
    /// A manifest declaring demo-fix for the built server (by path: the demo is not a dpkg package here).
    func writeManifest(_ host: TestHost, _ demo: DemoService, state: DesiredPatchState) throws {
        let text = """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata:
              name: demo
            spec:
              patches:
                - name: demo-fix
                  bundle: \(demo.bundle.path)
                  state: \(state.rawValue)
                  target:
                    path: \(demo.binary.path)

            """
        try text.write(to: host.work.appendingPathComponent("manifests/demo.yaml"), atomically: true, encoding: .utf8)
    }

    @Test func applyPatchesTheRunningDemoAndASecondRunAttachesToNothing() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        let demo = try DemoService(work: host.work)
        try demo.start()
        defer { demo.stop() }
        let pid = demo.pid
        #expect(try !demo.isFixed())
        try writeManifest(host, demo, state: .activated)

        let first = try host.suture(["apply", host.manifests])
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        #expect(try demo.isFixed())
        #expect(demo.pid == pid && demo.isRunning)
        #expect(first.stdout.contains("pid \(pid)"), "\(first.stdout)")

        // Regression (0ab1251): with a Suture patch live, a saved plan was refused as stale because `plan`
        // recorded the region's header state as unknown and `apply` as ACTIVE.
        // Regression (issue 13): the staleness check covered every process with a Suture marker on the
        // host, so tests running in parallel (their patched processes come and go) made this plan stale.
        // It now covers only what the plan depends on (this test's demo has its own build-id), so one
        // attempt must go through.
        let planFile = host.work.appendingPathComponent("plan.json").path
        let saved = try host.suture(["plan", host.manifests, "--out", planFile])
        #expect(saved.status == 0, "\(saved.stdout)\n\(saved.stderr)")
        let fromFile = try host.suture(["apply", planFile])
        #expect(fromFile.status == 0, "\(fromFile.stdout)\n\(fromFile.stderr)")

        // Hold the demo under our own tracer: any attach by suture would fail with EPERM.
        let tracer = try TracerHold(pid: pid, readyFile: host.work.appendingPathComponent("traced"))
        defer { tracer.release() }
        let second = try host.suture(["apply", host.manifests])
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("No changes"), "\(second.stdout)")
        tracer.release()
        #expect(try demo.isFixed())
    }

    @Test func killedAtEachJournalStepTheNextApplyConvergesAndTheDemoSurvives() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        let demo = try DemoService(work: host.work)
        try demo.start()
        defer { demo.stop() }
        // install, activate(pid): records 1 run-begin … 6 run-end; then deactivate(pid): 1 … 4.
        for (state, steps) in [(DesiredPatchState.activated, 1...6), (.deactivated, 1...4)] {
            for step in steps {
                // Start from the opposite state.
                try writeManifest(host, demo, state: state == .activated ? .absent : .activated)
                let reset = try host.suture(["apply", host.manifests])
                #expect(reset.status == 0, "reset before \(state) step \(step): \(reset.stdout)\n\(reset.stderr)")
                try writeManifest(host, demo, state: state)
                let p = try Suture.start(["apply", host.manifests, "--root", host.root.path],
                                         environment: ["SUTURE_TEST_STOP_AT_STEP": "\(step)"])
                let stopped = waitUntil(60) { processState(p.processIdentifier) == "T" || !p.isRunning }
                #expect(stopped && p.isRunning, "\(state) step \(step): did not stop at the hook")
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                #expect(demo.isRunning, "\(state) step \(step): the demo died")
                let r = try host.suture(["apply", host.manifests])
                #expect(r.status == 0, "\(state) step \(step): \(r.stdout)\n\(r.stderr)")
                #expect(r.stdout.contains("was interrupted") == (step < steps.upperBound), "\(state) step \(step): \(r.stdout)")
                #expect(demo.isRunning)
                #expect(try demo.isFixed() == (state == .activated), "\(state) step \(step)")
                let maps = (try? String(contentsOfFile: "/proc/\(demo.pid)/maps", encoding: .utf8)) ?? ""
                let patches = Set(maps.split(separator: "\n").compactMap { line -> String? in
                    guard let r = line.range(of: "/memfd:suture:") else { return nil }
                    return String(line[r.upperBound...].prefix { $0 != " " })
                })
                #expect(patches.count == (state == .activated ? 1 : 0), "\(state) step \(step): \(patches)")
            }
        }
        #expect(try demo.ask("GET 1") == "OK bravo")
    }

    @Test func rollbackBringsTheBugBackAndAcceptSurvivesPlan() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        let demo = try DemoService(work: host.work)
        try demo.start()
        defer { demo.stop() }
        try writeManifest(host, demo, state: .deactivated)
        #expect(try host.suture(["apply", host.manifests]).status == 0)    // generation 1: installed, not live
        try writeManifest(host, demo, state: .activated)
        #expect(try host.suture(["apply", host.manifests]).status == 0)    // generation 2: live
        #expect(try demo.isFixed())
        let r = try host.suture(["rollback"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(try !demo.isFixed())
        #expect(r.stdout.contains("Recorded generation 3."))

        // Imperative accept: live again, declared in local.yaml; the declarative side agrees.
        let accept = try host.suture(["patch", "accept", demo.bundle.path])
        #expect(accept.status == 0, "\(accept.stdout)\n\(accept.stderr)")
        #expect(accept.stdout.contains("ACCEPTED"), "\(accept.stdout)")
        #expect(try demo.isFixed())
        let apply = try host.suture(["apply"])
        #expect(apply.status == 0 && apply.stdout.contains("No changes"), "\(apply.stdout)\n\(apply.stderr)")
        let status = try host.suture(["patch", "status", "demo-fix"])
        #expect(status.stdout.contains("ACCEPTED"), "\(status.stdout)")
    }
}
