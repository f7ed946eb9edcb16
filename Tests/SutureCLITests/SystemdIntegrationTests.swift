import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// The systemd side: units verify, `suture reconcile` talks sd_notify, logs reach journald with fields.
@Suite struct SystemdIntegrationTests {
    static let units = TestSupport.packageRoot.appendingPathComponent("dist/systemd")

    static var hasSystemdAnalyze: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") }

    @Test(.enabled(if: hasSystemdAnalyze)) func unitsVerifyCleanly() throws {
        let dir = try TestSupport.temporaryDirectory("suture-units")
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [String] = []
        for name in ["suture-reconcile.service", "suture-reconcile.timer", "suture-boot.service"] {
            // ExecStart must exist for verify: point it at the built binary.
            let text = try String(contentsOf: Self.units.appendingPathComponent(name), encoding: .utf8)
                .replacingOccurrences(of: "/usr/bin/suture", with: Suture.binary)
            let file = dir.appendingPathComponent(name)
            try text.write(to: file, atomically: true, encoding: .utf8)
            files.append(file.path)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        p.arguments = ["verify", "--man=no"] + files
        let err = Pipe()
        p.standardError = err
        p.standardOutput = err
        try p.run()
        let output = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(output)")
        #expect(output.isEmpty, "systemd-analyze verify warned:\n\(output)")
        let service = try String(contentsOf: Self.units.appendingPathComponent("suture-reconcile.service"), encoding: .utf8)
        #expect(service.contains("Type=notify"))
        let timer = try String(contentsOf: Self.units.appendingPathComponent("suture-reconcile.timer"), encoding: .utf8)
        #expect(timer.contains("OnUnitActiveSec=5min") && timer.contains("RandomizedDelaySec="))
    }

    @Test func reconcileSendsStatusAndReadyToNotifySocket() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        try host.bundle("fix-a", uuid: "11111111-1111-4111-8111-111111111111")
        try host.manifest([("fix-a", .activated)])
        let etc = host.root.appendingPathComponent("etc/suture")
        try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
        try "manifests: [/work/manifests]\n".write(to: etc.appendingPathComponent("suture.yaml"), atomically: true, encoding: .utf8)

        let socketPath = host.root.appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            _ = socketPath.utf8CString.withUnsafeBytes { memcpy(raw.baseAddress!, $0.baseAddress!, min($0.count, raw.count - 1)) }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let r = try host.suture(["reconcile"], environment: ["NOTIFY_SOCKET": socketPath])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(host.storeUUIDs == ["11111111-1111-4111-8111-111111111111"])
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n <= 0 { break }
            messages.append(String(decoding: buffer.prefix(n), as: UTF8.self))
        }
        #expect(messages.first == "STATUS=reconciling", "\(messages)")
        #expect(messages.contains { $0.hasPrefix("STATUS=applying") }, "\(messages)")
        #expect(messages.last?.hasPrefix("READY=1\nSTATUS=Apply complete") == true, "\(messages)")
    }

    /// Captures what libsystemd sends to `/run/systemd/journal/socket` inside a private mount namespace
    /// (a tmpfs over /run/systemd), with a listener bound there.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") && getuid() == 0))
    func journalEntriesCarrySutureFields() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        try host.bundle("fix-a", uuid: "11111111-1111-4111-8111-111111111111")
        try host.manifest([("fix-a", .activated)])
        let out = host.root.appendingPathComponent("journal.jsonl")
        let done = host.root.appendingPathComponent("suture-done")
        let listener = """
            import socket, json, sys, os
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind('/run/systemd/journal/socket')
            s.settimeout(1)
            out = open(sys.argv[1], 'w')
            idle = 0
            while True:
                try:
                    data = s.recv(1 << 20)
                except socket.timeout:
                    idle += 1
                    # Stop once suture has exited (the shell creates the done file), or after 10 minutes.
                    if os.path.exists(sys.argv[2]) or idle > 600:
                        break
                    continue
                fields, i = {}, 0
                while i < len(data):
                    nl = data.index(b'\\n', i)
                    line = data[i:nl]
                    if b'=' in line:
                        k, v = line.split(b'=', 1); fields[k.decode()] = v.decode(); i = nl + 1
                    else:
                        n = int.from_bytes(data[nl + 1:nl + 9], 'little')
                        fields[line.decode()] = data[nl + 9:nl + 9 + n].decode(); i = nl + 9 + n + 1
                out.write(json.dumps(fields) + '\\n'); out.flush()
            """
        let script = host.root.appendingPathComponent("listen.py")
        try listener.write(to: script, atomically: true, encoding: .utf8)
        let shell = """
            set -e
            mount -t tmpfs tmpfs /run/systemd
            mkdir -p /run/systemd/journal
            python3 '\(script.path)' '\(out.path)' '\(done.path)' &
            for i in $(seq 1 3000); do [ -S /run/systemd/journal/socket ] && break; sleep 0.02; done
            SUTURE_LOG=journal '\(Suture.binary)' apply '\(host.manifests)' --root '\(host.root.path)'
            touch '\(done.path)'
            wait
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["-m", "--propagation", "private", "sh", "-c", shell]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        let entries = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] ?? [:] }
        let install = entries.first { $0["SUTURE_ACTION"] == "install" }
        #expect(install?["SUTURE_PATCH"] == "fix-a", "\(entries)")
        #expect(install?["SUTURE_RESULT"] == "done")
        #expect(install?["SYSLOG_IDENTIFIER"] == "suture")
        #expect(install?["PRIORITY"] == "6")
        #expect(install?["MESSAGE"]?.contains("install fix-a") == true)
    }
}
