import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// What the CLI says to a user who types a SysCare command, asks for JSON, mixes a typo into several
/// identifiers, runs `plan` on an unconfigured host, or runs `apply` without root.
@Suite struct CLIMessageTests {
    static let uuidA = "aaaaaaaa-0000-4000-8000-000000000001"
    static let uuidB = "bbbbbbbb-0000-4000-8000-000000000002"

    /// A test host whose configured manifests (`etc/suture/manifests.d`) declare fix-a and fix-b.
    private static func hostDeclaringTwoPatches() throws -> TestHost {
        let host = try TestHost()
        let a = try host.bundle("fix-a", uuid: uuidA)
        let b = try host.bundle("fix-b", uuid: uuidB)
        let directory = host.root.appendingPathComponent("etc/suture/manifests.d")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var text = "apiVersion: suture.dev/v1\nkind: PatchSet\nmetadata: {name: test}\nspec:\n  patches:\n"
        for bundle in [a, b] {
            text += "    - name: \(bundle.metadata.name)\n      bundle: \(bundle.path)\n      state: deactivated\n"
            text += "      target: {path: \(bundle.metadata.entities[0].targetPath)}\n"
        }
        try text.write(to: directory.appendingPathComponent("test.yaml"), atomically: true, encoding: .utf8)
        return host
    }

    @Test func sysCareVerbsWeDoNotHaveGetAPointerToOurs() throws {
        let rescan = try Suture.run(["patch", "rescan"])
        #expect(rescan.status == 64)
        #expect(rescan.stderr.hasPrefix("error: `suture patch rescan` does not exist. Suture has no daemon"),
                "\(rescan.stderr)")
        #expect(rescan.stderr.contains("`suture patch list`") && !rescan.stderr.contains("Unexpected argument"))
        let top = try Suture.run(["rescan"])
        #expect(top.status == 64 && top.stderr.hasPrefix("error: `suture rescan` does not exist."), "\(top.stderr)")
        let reboot = try Suture.run(["reboot"])
        #expect(reboot.status == 64 && reboot.stderr.contains("suture reconcile --boot"), "\(reboot.stderr)")
        // SysCare's top-level patch verbs point at `suture patch VERB`, with the arguments given.
        let list = try Suture.run(["list"])
        #expect(list.status == 64)
        #expect(list.stderr.contains("run `suture patch list`"), "\(list.stderr)")
        let active = try Suture.run(["active", "demo-fix"])
        #expect(active.stderr.contains("run `suture patch active demo-fix`"), "\(active.stderr)")
        // Our own commands are untouched.
        #expect(try Suture.run(["patch", "--help"]).status == 0)
    }

    @Test func patchListJSONIsVersioned() throws {
        let host = try Self.hostDeclaringTwoPatches()
        defer { host.cleanup() }
        let run = try host.suture(["patch", "list", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(report["format_version"] as? Int == 1)
        // The host's /proc is real: other tests' live patches show up too (as foreign markers); look at ours.
        let all = try #require(report["patches"] as? [[String: Any]])
        let patches = all.filter { [Self.uuidA, Self.uuidB].contains($0["uuid"] as? String ?? "") }
        #expect(patches.count == 2, "\(run.stdout)")
        #expect(Set(patches.compactMap { $0["name"] as? String }) == ["suture-test-1.0/fix-a", "suture-test-1.0/fix-b"])
        // Declared deactivated but not installed: NOT-APPLIED, Drifted.
        #expect(patches.allSatisfy { $0["status"] as? String == "NOT-APPLIED" && $0["conditions"] as? [String] == ["Drifted"] },
                "\(run.stdout)")
        // The table is still the default.
        #expect(try host.suture(["patch", "list"]).stdout.hasPrefix("Uuid"))
    }

    @Test func severalIdentifiersWithOneUnknownReportBoth() throws {
        let host = try Self.hostDeclaringTwoPatches()
        defer { host.cleanup() }
        let info = try host.suture(["patch", "info", "fix-a", "fix-typo", "fix-b"])
        #expect(info.status == 1)
        #expect(info.stdout.contains("name:        fix-a") && info.stdout.contains("name:        fix-b"), "\(info.stdout)")
        #expect(info.stderr.contains("error: no patch matches 'fix-typo'"), "\(info.stderr)")

        let status = try host.suture(["patch", "status", "fix-typo", "fix-b"])
        #expect(status.status == 1)
        #expect(status.stdout == "suture-test-1.0/fix-b: NOT-APPLIED (Drifted)\n", "\(status.stdout)")
        #expect(status.stderr.contains("no patch matches 'fix-typo'"))

        let target = try host.suture(["patch", "target", "fix-a", "fix-typo"])
        #expect(target.status == 1 && target.stdout.contains("file:    /nonexistent/suture-test/fix-a"))

        // A verb that changes state changes nothing unless every identifier resolves, and says which did.
        let apply = try host.suture(["patch", "apply", "fix-a", "fix-typo"])
        #expect(apply.status == 1)
        #expect(apply.stderr.contains("error: no patch matches 'fix-typo'"), "\(apply.stderr)")
        #expect(apply.stderr.contains("nothing was changed: `suture patch apply` needs every identifier to resolve "
                                      + "(1 of 2 did not); resolved:\n  fix-a: suture-test-1.0/fix-a (\(Self.uuidA))"),
                "\(apply.stderr)")
        #expect(host.storeUUIDs.isEmpty)
    }

    @Test func planWithoutPathsOrConfigurationSaysWhatToDo() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        let run = try host.suture(["plan"])
        #expect(run.status == 1)
        #expect(!run.stderr.contains("no such file or directory"), "\(run.stderr)")
        #expect(run.stderr.hasPrefix("error: no manifests to read: none given, and \(host.root.path)/etc/suture/suture.yaml "
                                     + "sets no `manifests:` while the default \(host.root.path)/etc/suture/manifests.d "
                                     + "does not exist. Pass manifest files or directories (`suture plan FILE|DIR…`), "
                                     + "or list them under `manifests:` in the config file"), "\(run.stderr)")
        // With paths, or with the default directory present, plan runs as before.
        #expect(try host.suture(["plan", host.manifests]).stderr.contains("no *.yaml"))
    }

    @Test func nonRootApplySaysRunAsRootAndNamesThePath() throws {
        let root = try TestSupport.temporaryDirectory("suture-nonroot")   // 0755, owned by root
        defer { try? FileManager.default.removeItem(at: root) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Suture.binary, "apply", "--root", root.path]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(!stderr.contains("NSCocoaErrorDomain"), "\(stderr)")
        #expect(stderr.contains("cannot create directory \(root.path)/run: Permission denied; run as root"), "\(stderr)")
    }
}
