import Foundation
import SutureCore
import Testing

/// The one subprocess helper, on real processes: exit status, both outputs captured, the timeout kills.
@Suite struct ChildProcessTests {
    @Test func capturesStatusStdoutAndStderr() throws {
        let r = try ChildProcess.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(r.status == 3 && !r.succeeded && !r.timedOut)
        #expect(r.outputText == "out\n")
        #expect(r.standardError == "err\n")
        #expect(r.failureDescription(timeout: .seconds(30)) == "exited 3: err")
    }

    @Test func drainsLargeOutputOnBothPipes() throws {
        // 1 MiB on each pipe: more than a pipe buffer, so reading one while the other fills would hang.
        let r = try ChildProcess.run("/bin/sh", ["-c", "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2"])
        #expect(r.succeeded)
        #expect(r.standardOutput.count == 1_048_576 && r.standardError.utf8.count == 1_048_576)
    }

    @Test func aToolThatOutlivesItsTimeoutIsKilled() throws {
        let r = try ChildProcess.run("/bin/sleep", ["600"], timeout: .milliseconds(200))
        #expect(r.timedOut && !r.succeeded)
        #expect(r.status == 128 + SIGKILL)
        #expect(r.failureDescription(timeout: .milliseconds(200)).hasPrefix("killed after"))
    }

    @Test func aMissingExecutableIsALaunchError() {
        #expect(throws: ChildProcess.LaunchError.self) { try ChildProcess.run("/nonexistent/tool", []) }
    }
}
