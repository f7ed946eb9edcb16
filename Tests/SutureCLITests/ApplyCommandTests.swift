import Foundation
import SutureCore
import SuturePatching
import SutureTestSupport
import Testing

/// `suture apply`, `history`, `rollback`, `reconcile` and `patch accept` run as real processes against a
/// private root (real /proc and /sys, private store/journal/lock/generations).
@Suite struct ApplyCommandTests {
    static let uuidA = "11111111-1111-4111-8111-111111111111"
    static let uuidB = "22222222-2222-4222-8222-222222222222"

    /// The plan `suture plan --out` would write, made by the same library session (region header states of
    /// other tests' patched processes included, as `suture plan` reads them).
    func savedPlan(_ host: TestHost) throws -> SavedPlan {
        try PlanSession(host: SutureHost.system(root: host.root.path)).savedPlan(arguments: [host.manifests])
    }

    @Test func applyInstallsThenSecondRunHasNoChanges() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        try host.bundle("fix-a", uuid: Self.uuidA)
        try host.manifest([("fix-a", .activated)])
        let first = try host.suture(["apply", host.manifests])
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        #expect(host.storeUUIDs == [Self.uuidA])
        #expect(first.stdout.contains("Recorded generation 1."))
        let second = try host.suture(["apply", host.manifests])
        #expect(second.status == 0)
        #expect(second.stdout.contains("No changes"), "\(second.stdout)")
        #expect(!second.stdout.contains("generation"))
        let json = try host.suture(["apply", host.manifests, "--json"])
        let report = try JSONDecoder().decode(ApplyReport.self, from: Data(json.stdout.utf8))
        #expect(report.exitCode == .converged && report.actions.isEmpty)
    }

    @Test func staleSavedPlanIsRefusedSayingWhatChanged() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        let b = try host.bundle("fix-b", uuid: Self.uuidB)
        try host.bundle("fix-a", uuid: Self.uuidA)
        try host.manifest([("fix-a", .activated)])
        let planFile = host.work.appendingPathComponent("plan.json")
        try savedPlan(host).encoded().write(to: planFile, atomically: true, encoding: .utf8)
        // Someone changes the host after the plan was made.
        _ = try PatchStore(root: host.root).install(b)
        let r = try host.suture(["apply", planFile.path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("stale"), "\(r.stdout)")
        #expect(r.stderr.contains("changed"), "\(r.stderr)")
        #expect(host.storeUUIDs == [Self.uuidB])   // nothing applied

        // A fresh plan applies exactly. Other tests patch and unpatch processes concurrently, and every
        // marker-carrying process is part of the fingerprint: a plan can go stale between two commands on a
        // busy host, so plan again when that happens (it must not be applied).
        var ok = Suture(status: -1, stdout: "", stderr: "")
        for _ in 0..<10 {
            try savedPlan(host).encoded().write(to: planFile, atomically: true, encoding: .utf8)
            ok = try host.suture(["apply", planFile.path])
            if !(ok.status == 1 && ok.stdout.contains("stale")) { break }
        }
        #expect(ok.status == 0, "\(ok.stdout)\n\(ok.stderr)")
        #expect(host.storeUUIDs == [Self.uuidA, Self.uuidB])
    }

    @Test func corruptedSecondBundleRollsBackTheFirstExit4() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        try host.bundle("fix-a", uuid: Self.uuidA)
        try host.bundle("fix-b", uuid: Self.uuidB)
        try host.manifest([("fix-a", .activated), ("fix-b", .activated)])
        let planFile = host.work.appendingPathComponent("plan.json")
        let payload = host.work.appendingPathComponent("bundles/fix-b/fix-b.o")
        let original = try Data(contentsOf: payload)
        var r = Suture(status: -1, stdout: "", stderr: "")
        // Retried only when the plan went stale because of other tests' processes (see above).
        for _ in 0..<10 {
            try original.write(to: payload)
            let saved = try savedPlan(host)
            #expect(saved.plan.actions.map(\.patch) == ["fix-a", "fix-b"])
            try saved.encoded().write(to: planFile, atomically: true, encoding: .utf8)
            // Corrupt the second bundle's payload after planning.
            try (original + Data("tampered".utf8)).write(to: payload)
            r = try host.suture(["apply", planFile.path, "--json"])
            if !(r.status == 1 && r.stdout.contains("stale")) { break }
        }
        #expect(r.status == 4, "\(r.stdout)\n\(r.stderr)")
        let report = try JSONDecoder().decode(ApplyReport.self, from: Data(r.stdout.utf8))
        #expect(report.actions.map(\.status) == [.undone, .failed])
        #expect(report.rollback.map(\.action.patch) == ["fix-a"])
        #expect(host.storeUUIDs.isEmpty)
        #expect(ApplyJournal.inspect(paths: host.paths) == nil)
    }

    @Test func lockContentionNamesTheHolder() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        try host.manifest([])
        let holder = LockHolder(pid: 4242, command: "suture apply held-by-test", started: "2026-11-29T19:00:00Z")
        let lock = try RunLock.acquire(paths: host.paths, holder: holder)
        let r = try host.suture(["apply", host.manifests, "--lock-timeout", "0.3"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("pid 4242 (suture apply held-by-test)"), "\(r.stderr)")
        lock.release()
        let ok = try host.suture(["apply", host.manifests])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func killedAtEachJournalStepTheNextApplyConverges() throws {
        for step in 1...6 {
            let host = try TestHost()
            defer { host.cleanup() }
            try host.bundle("fix-a", uuid: Self.uuidA)
            try host.bundle("fix-b", uuid: Self.uuidB)
            try host.manifest([("fix-a", .activated), ("fix-b", .activated)])
            let p = try Suture.start(["apply", host.manifests, "--root", host.root.path],
                                     environment: ["SUTURE_TEST_STOP_AT_STEP": "\(step)"])
            let stopped = waitUntil(60) { processState(p.processIdentifier) == "T" || !p.isRunning }
            #expect(stopped && p.isRunning, "step \(step): apply did not stop at the hook")
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let r = try host.suture(["apply", host.manifests])
            #expect(r.status == 0, "step \(step): \(r.stdout)\n\(r.stderr)")
            // Step 6 is run-end: that run finished its journal before it was killed.
            #expect(r.stdout.contains("was interrupted") == (step < 6), "step \(step): \(r.stdout)")
            #expect(host.storeUUIDs == [Self.uuidA, Self.uuidB], "step \(step)")
            let again = try host.suture(["apply", host.manifests])
            #expect(again.stdout.contains("No changes") && !again.stdout.contains("interrupted"), "step \(step)")
        }
    }

    @Test func rollbackReturnsToAnEarlierGeneration() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        try host.bundle("fix-a", uuid: Self.uuidA)
        try host.bundle("fix-b", uuid: Self.uuidB)
        try host.manifest([("fix-a", .activated)])
        #expect(try host.suture(["apply", host.manifests]).status == 0)
        try host.manifest([("fix-a", .activated), ("fix-b", .activated)])
        #expect(try host.suture(["apply", host.manifests]).status == 0)
        #expect(host.storeUUIDs == [Self.uuidA, Self.uuidB])
        let history = try host.suture(["history"])
        #expect(history.stdout.contains("1  ") && history.stdout.contains("2  "), "\(history.stdout)")
        let r = try host.suture(["rollback", "1"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(host.storeUUIDs == [Self.uuidA])
        #expect(r.stdout.contains("Recorded generation 3."))
        let gens = GenerationStore(paths: host.paths)
        #expect(try gens.load(3).command == "suture rollback 1")
        // Nothing to roll back to without an argument when fewer than two generations exist elsewhere.
        let bad = try host.suture(["rollback", "9"])
        #expect(bad.status == 1 && bad.stderr.contains("generation 9 does not exist"))
    }

    @Test func acceptWritesTheLocalManifestAndPlanShowsNoChanges() throws {
        let host = try TestHost()
        defer { host.cleanup() }
        let a = try host.bundle("fix-a", uuid: Self.uuidA)
        let r = try host.suture(["patch", "accept", a.path])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(host.storeUUIDs == [Self.uuidA])
        let local = try LocalManifest.load(paths: host.paths)
        #expect(local.entries.map(\.name) == ["fix-a"] && local.entries.first?.state == .accepted)
        // The manifests now declare what the imperative verb did: nothing to plan.
        let session = PlanSession(host: try SutureHost.system(root: host.root.path))
        let snapshot = try session.snapshot(arguments: [host.paths.localManifest])
        #expect(session.plan(snapshot).actions.isEmpty)
        let apply = try host.suture(["apply"])
        #expect(apply.status == 0 && apply.stdout.contains("No changes"), "\(apply.stdout)\n\(apply.stderr)")
        let list = try host.suture(["patch", "list"])
        #expect(list.stdout.hasPrefix("Uuid"), "\(list.stdout)")
        #expect(list.stdout.contains(Self.uuidA) && list.stdout.contains("suture-test-1.0/fix-a"))
        // remove declines it: gone from the store and from local.yaml.
        let removed = try host.suture(["patch", "remove", "fix-a"])
        #expect(removed.status == 0, "\(removed.stderr)")
        // Regression (new-user trial): no "will bring it back" warning for the declaration remove just dropped.
        #expect(!removed.stderr.contains("bring it back"), "\(removed.stderr)")
        #expect(host.storeUUIDs.isEmpty)
        #expect(try LocalManifest.load(paths: host.paths).entries.isEmpty)
    }
}
