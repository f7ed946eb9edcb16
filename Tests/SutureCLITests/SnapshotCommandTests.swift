import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// `suture snapshot` and `suture plan --live` end to end, with a real gcc-built target running.
@Suite("suture snapshot / plan --live end to end")
struct SnapshotCommandTests {
    static var suture: String { PlanCommandTests.suture }

    static func actions(_ json: String) throws -> [PlanAction] {
        try JSONDecoder().decode(Plan.self, from: Data(json.utf8)).actions
    }

    static func editSnapshot(_ path: String, _ edit: (inout LiveSnapshot) -> Void) throws -> String {
        var snapshot = try LiveSnapshot.read(from: path)
        edit(&snapshot)
        let out = path.replacingOccurrences(of: ".json", with: "-edited-\(UUID().uuidString.prefix(8)).json")
        try snapshot.encoded().write(to: URL(fileURLWithPath: out))
        return out
    }

    @Test func aSnapshotPlansLikeTheLiveSystemAndEditsChangeThePlan() throws {
        let dir = try TestSupport.temporaryDirectory("snapshot-e2e")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (binary, manifest, bundle) = try PlanCommandTests.setUp(dir)
        let target = try PlanCommandTests.Target(binary)
        defer { target.stop() }
        try PlanCommandTests.waitExec(target.pid, binary)

        let snapshotPath = dir.appendingPathComponent("host.json").path
        let taken = try CBuild.run(Self.suture, ["snapshot", "--output", snapshotPath])
        #expect(taken.status == 0, "\(taken.stderr)")
        let snapshot = try LiveSnapshot.read(from: snapshotPath)
        #expect(snapshot.formatVersion == 1)
        let process = try #require(snapshot.live.processes.first { $0.pid == target.pid })
        #expect(process.objects.contains { $0.path == binary && $0.buildID == bundle.metadata.entities[0].targetBuildID })
        // No secrets: no environment, no command lines.
        let text = try String(contentsOfFile: snapshotPath, encoding: .utf8)
        #expect(!text.contains("PATH="))

        // Same actions from the live system and from the snapshot.
        let livePlan = try CBuild.run(Self.suture, ["plan", manifest, "--json"])
        let snapshotPlan = try CBuild.run(Self.suture, ["plan", "--live", snapshotPath, manifest, "--format", "json"])
        #expect(livePlan.status == 0 && snapshotPlan.status == 0, "\(livePlan.stderr) \(snapshotPlan.stderr)")
        let hosts = try #require(JSONSerialization.jsonObject(with: Data(snapshotPlan.stdout.utf8)) as? [String: Any])
        let planJSON = try JSONSerialization.data(withJSONObject: try #require((hosts["hosts"] as? [[String: Any]])?.first?["plan"]))
        let fromSnapshot = try JSONDecoder().decode(Plan.self, from: planJSON).actions
        let fromLive = try Self.actions(livePlan.stdout)
        #expect(fromSnapshot == fromLive)
        #expect(fromLive.contains { $0.kind == .activate && $0.pid == target.pid })

        // Byte-identical output for the same inputs and reference time; the age is stated.
        let args = ["plan", "--live", snapshotPath, manifest, "--now", "2030-01-01T00:00:00Z"]
        let first = try CBuild.run(Self.suture, args), second = try CBuild.run(Self.suture, args)
        #expect(first.stdout == second.stdout && first.status == 0)
        #expect(first.stdout.contains("taken \(snapshot.takenAt)") && first.stdout.contains(" old)"))

        // The process is gone: nothing to activate.
        let gone = try Self.editSnapshot(snapshotPath) { $0.live.processes.removeAll { $0.pid == target.pid } }
        let goneActions = try Self.hostActions(try CBuild.run(Self.suture, ["plan", "--live", gone, manifest, "--format", "json"]))
        #expect(!goneActions.contains { $0.kind == .activate })

        // The patch is already live in the process (and installed): no changes, exit 0 with --detailed-exitcode.
        let live = try Self.editSnapshot(snapshotPath) { snap in
            let index = snap.live.processes.firstIndex { $0.pid == target.pid }!
            snap.live.processes[index].patches = [UserPatchMarker(uuid: bundle.metadata.uuid, address: 0x7000_0000, state: .active)]
            snap.live.store = [InstalledBundle(bundle: bundle)]
        }
        let converged = try CBuild.run(Self.suture, ["plan", "--live", live, manifest, "--detailed-exitcode"])
        #expect(converged.status == 0, "\(converged.stdout)\(converged.stderr)")
        #expect(converged.stdout.contains("No changes"))

        // The manifest targets a package at a version the snapshot does not have: a plan error, exit 1.
        let pkgDir = try TestSupport.temporaryDirectory("snapshot-pkg")
        defer { try? FileManager.default.removeItem(at: pkgDir) }
        let (_, pkgManifest, _) = try PlanCommandTests.setUp(pkgDir, target: "{package: demo-server, version: \"1.0\"}", package: "demo-server")
        let otherVersion = try Self.editSnapshot(snapshotPath) { $0.live.packages["demo-server"] = ["2.0"] }
        let mismatch = try CBuild.run(Self.suture, ["plan", "--live", otherVersion, pkgManifest])
        #expect(mismatch.status == 1, "\(mismatch.stdout)")
        #expect((mismatch.stdout + mismatch.stderr).contains("at version 2.0"), "\(mismatch.stdout)\(mismatch.stderr)")
    }

    static func hostActions(_ output: CBuild.Output) throws -> [PlanAction] {
        let hosts = try #require(JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let plan = try #require((hosts["hosts"] as? [[String: Any]])?.first?["plan"])
        return try JSONDecoder().decode(Plan.self, from: JSONSerialization.data(withJSONObject: plan)).actions
    }

    @Test func aDirectoryOfSnapshotsGivesOneSectionPerSelectedHost() throws {
        let dir = try TestSupport.temporaryDirectory("snapshot-hosts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, manifest, _) = try PlanCommandTests.setUp(dir)
        // Select only hosts named web-*.
        var text = try String(contentsOfFile: manifest, encoding: .utf8)
        text = text.replacingOccurrences(of: "spec:\n", with: "spec:\n  hosts: {hostnames: [\"web-*\"]}\n")
        try text.write(toFile: manifest, atomically: true, encoding: .utf8)
        let hosts = dir.appendingPathComponent("hosts")
        try FileManager.default.createDirectory(at: hosts, withIntermediateDirectories: true)
        for name in ["web-1", "db-1"] {
            let live = LiveState(hostname: name, labels: ["role": name.hasPrefix("web") ? "web" : "db"],
                                 bootID: "1f2e3d4c-0000-4000-8000-000000000001", kernelRelease: "6.1.0-57-amd64")
            try LiveSnapshot.make(live: live, at: Date(timeIntervalSince1970: 1_795_000_000), sutureVersion: "0.1.0")
                .encoded().write(to: hosts.appendingPathComponent("\(name).json"))
        }
        let result = try CBuild.run(Self.suture, ["plan", "--live", hosts.path, manifest, "--format", "markdown",
                                                  "--now", "2026-11-18T12:06:40Z", "--detailed-exitcode"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stdout.contains("| `db-1` | 1 h 0 min | 0 | 0 | 0 | 0 | 0 | 0 |"), "\(result.stdout)")
        #expect(result.stdout.contains("| `web-1` | 1 h 0 min | 1 | 0 | 0 | 0 |"), "\(result.stdout)")
        #expect(result.stdout.contains("_No PatchSet selects this host._"))

        // A broken snapshot in the directory: one clear error, exit 1.
        try "{\"format_version\": 1, \"taken".write(to: hosts.appendingPathComponent("zz-broken.json"), atomically: true, encoding: .utf8)
        let broken = try CBuild.run(Self.suture, ["plan", "--live", hosts.path, manifest])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("zz-broken.json: not a valid JSON document"), "\(broken.stderr)")
    }
}
