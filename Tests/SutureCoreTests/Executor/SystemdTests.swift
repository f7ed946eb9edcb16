import Foundation
import Logging
import Testing
import SutureCore

@Suite struct JournaldFieldTests {
    @Test func fieldsCarryPriorityIdentifierAndUpperCasedMetadata() {
        let fields = JournaldLogHandler.fields(
            level: .error, message: "activate fix-a in pid 10: failed",
            metadata: ["suture_patch": "fix-a", "suture_action": "activate", "suture_pid": "10",
                       "suture_result": "failed", "weird-key.x": "v", "9lives": "w"],
            identifier: "suture", file: "F.swift", function: "f()", line: 7)
        #expect(fields.prefix(3) == ["MESSAGE=activate fix-a in pid 10: failed", "PRIORITY=3", "SYSLOG_IDENTIFIER=suture"])
        #expect(fields.contains("SUTURE_PATCH=fix-a") && fields.contains("SUTURE_ACTION=activate")
                && fields.contains("SUTURE_PID=10") && fields.contains("SUTURE_RESULT=failed"))
        #expect(fields.contains("WEIRD_KEY_X=v") && fields.contains("SUTURE_9LIVES=w"))
        #expect(fields.contains("CODE_LINE=7"))
        #expect(JournaldLogHandler.priority(.notice) == 5 && JournaldLogHandler.priority(.debug) == 7)
    }
}

/// `sd_notify` through libsystemd to a datagram socket this test binds (NOTIFY_SOCKET is process-global).
@Suite(.serialized) struct NotifyTests {
    @Test func readyAndStatusReachNotifySocket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("suture-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            _ = path.utf8CString.withUnsafeBytes { src in memcpy(raw.baseAddress!, src.baseAddress!, min(src.count, raw.count - 1)) }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        let previous = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"]
        setenv("NOTIFY_SOCKET", path, 1)
        defer { if let previous { setenv("NOTIFY_SOCKET", previous, 1) } else { unsetenv("NOTIFY_SOCKET") } }

        #expect(SystemdNotifier.ready(status: "converged: 0 changes") > 0)
        #expect(SystemdNotifier.status("applying 3 actions") > 0)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n1 = recv(fd, &buffer, buffer.count, 0)
        #expect(String(decoding: buffer.prefix(max(0, n1)), as: UTF8.self) == "READY=1\nSTATUS=converged: 0 changes")
        let n2 = recv(fd, &buffer, buffer.count, 0)
        #expect(String(decoding: buffer.prefix(max(0, n2)), as: UTF8.self) == "STATUS=applying 3 actions")

        unsetenv("NOTIFY_SOCKET")
        #expect(SystemdNotifier.status("nobody listens") == 0)
    }
}
