import Foundation
import Testing
import SutureTestSupport
@testable import SutureCore

@Suite struct HostInfoReaderTests {
    func makeRoot(_ files: [String: String]) throws -> URL {
        let root = try TestSupport.temporaryDirectory("hostinfo")
        for (path, content) in files {
            let url = root.appendingPathComponent(String(path.dropFirst()))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        return root
    }

    @Test func readsEverythingUnderTheRoot() throws {
        let root = try makeRoot([
            "/proc/sys/kernel/hostname": "web-01\n",
            "/proc/sys/kernel/random/boot_id": "0f6b5a3c-1111-4222-8333-944455556666\n",
            "/proc/sys/kernel/osrelease": "6.1.0-57-amd64\n",
            "/etc/suture/labels": "# roles\nrole=web\n  tier = gold  \n\nzone=eu-west-1a\nempty=\n",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let info = try HostInfoReader(root: root.path).read()
        #expect(info.hostname == "web-01")
        #expect(info.bootID == "0f6b5a3c-1111-4222-8333-944455556666")
        #expect(info.kernelRelease == "6.1.0-57-amd64")
        #expect(info.labels == ["role": "web", "tier": "gold", "zone": "eu-west-1a", "empty": ""])
    }

    @Test func missingLabelsFileMeansNoLabels() throws {
        let root = try makeRoot(["/proc/sys/kernel/hostname": "h\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        let info = try HostInfoReader(root: root.path).read()
        #expect(info.labels.isEmpty)
        #expect(info.bootID == "")
    }

    @Test func badLabelLinesAreErrorsWithLineNumbers() {
        #expect(throws: LabelsFileError(path: "L", line: 2, message: "expected key=value, found 'oops'")) {
            try HostInfoReader.parseLabels("a=1\noops\n", path: "L")
        }
        #expect(throws: LabelsFileError(path: "L", line: 3, message: "duplicate label key 'a'")) {
            try HostInfoReader.parseLabels("a=1\n#c\na=2\n", path: "L")
        }
        #expect(throws: LabelsFileError.self) { try HostInfoReader.parseLabels("=x\n", path: "L") }
        #expect(throws: LabelsFileError.self) { try HostInfoReader.parseLabels("bad key=x\n", path: "L") }
        #expect(LabelsFileError(path: "/etc/suture/labels", line: 4, message: "m").description == "/etc/suture/labels:4: error: m")
        #expect((try? HostInfoReader.parseLabels("k=a=b\n", path: "L")) == ["k": "a=b"])
    }

    @Test func realHost() throws {
        let info = try HostInfoReader().read()
        #expect(!info.hostname.isEmpty)
        #expect(info.bootID.count == 36)
        var name = utsname()
        uname(&name)
        let release = withUnsafePointer(to: &name.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        #expect(info.kernelRelease == release)
    }
}
