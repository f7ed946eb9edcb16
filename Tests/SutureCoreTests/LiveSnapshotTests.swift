import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// Live-state snapshots (`suture snapshot`, `suture plan --live`): format, errors, schema, rendering.
@Suite("Live-state snapshots")
struct LiveSnapshotTests {
    static func sampleLive(hostname: String = "web-1") -> LiveState {
        LiveState(
            hostname: hostname, labels: ["role": "web"], bootID: "1f2e3d4c-0000-4000-8000-000000000001",
            kernelRelease: "6.1.0-57-amd64",
            kernel: KernelLiveState(livepatchSupported: true,
                                    patches: [KernelLivePatch(name: "livepatch_kvmlp", enabled: true, transition: false,
                                                              objects: [KernelPatchObject(name: "vmlinux", patched: true,
                                                                                          functions: [KernelPatchFunction(name: "cmdline_proc_show", sympos: 0)])],
                                                              module: KernelModuleInfo(refcount: 1, taint: "OEK", initState: "live"))],
                                    tainted: 45056, ftraceEnabled: true,
                                    livepatchModules: ["livepatch_kvmlp": KernelModuleInfo(refcount: 1, taint: "OEK", initState: "live")]),
            processes: [
                ProcessLiveState(pid: 4242, comm: "demo-server", startTime: 987_654,
                                 objects: [MappedObject(path: "/usr/sbin/demo-server", buildID: "0a1b2c3d", device: "fe:01",
                                                        inode: 1234, loadBias: 0x5555_5555_4000)],
                                 patches: [UserPatchMarker(uuid: "5e3c0a1b-0000-4000-8000-00000000e2e0", address: 0x5555_0000_0000, state: .active)]),
                ProcessLiveState(pid: 17, comm: "sleep", startTime: 12),
            ],
            packages: ["demo-server": ["1.0"]])
    }

    @Test func roundTripsAndIsDeterministic() throws {
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        let a = LiveSnapshot.make(live: Self.sampleLive(), at: date, sutureVersion: "0.1.0")
        var shuffled = Self.sampleLive()
        shuffled.processes.reverse()
        let b = LiveSnapshot.make(live: shuffled, at: date, sutureVersion: "0.1.0")
        #expect(try a.encoded() == b.encoded())
        let decoded = try LiveSnapshot.decode(a.encoded(), name: "a.json")
        #expect(decoded == a)
        #expect(decoded.takenAt == "2026-11-18T11:06:40Z")
        #expect(decoded.age(now: date.addingTimeInterval(180)) == 180)
        #expect(LiveSnapshot.describeAge(seconds: 180) == "3 min")
        #expect(LiveSnapshot.describeAge(seconds: 7500) == "2 h 5 min")
    }

    /// Each broken document gives exactly one error naming the file (and the field where there is one).
    @Test(arguments: [
        ("{\"format_version\": 2, \"taken_at\": \"x\", \"suture_version\": \"9\", \"live\": {}}",
         "h.json: snapshot format_version 2 is not supported by this suture (reads 1...1)"),
        ("{\"taken_at\": \"x\"}", "h.json: not a Suture live-state snapshot: no integer \"format_version\" at the top level"),
        ("[1, 2]", "h.json: not a Suture live-state snapshot: the top level must be a JSON object"),
        ("{\"format_version\": 1, \"taken_at\": \"2026-11-29T20:00:00Z\", \"suture_vers", "h.json: not a valid JSON document (truncated or edited by hand?)"),
        ("{\"format_version\": 1, \"taken_at\": \"2026-11-29T20:00:00Z\", \"suture_version\": \"0.1.0\"}", "h.json: field live is missing"),
    ])
    func brokenSnapshotsGiveOneClearError(document: String, expected: String) throws {
        do {
            _ = try LiveSnapshot.decode(Data(document.utf8), name: "h.json")
            Issue.record("accepted a broken snapshot")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics[0].description.hasPrefix("error: " + expected), "\(error)")
        }
    }

    @Test func aWrongTypeDeepInsideNamesTheField() throws {
        let good = try LiveSnapshot.make(live: Self.sampleLive(), at: Date(), sutureVersion: "0.1.0").encoded()
        var object = try #require(JSONSerialization.jsonObject(with: good) as? [String: Any])
        var live = try #require(object["live"] as? [String: Any])
        var processes = try #require(live["processes"] as? [[String: Any]])
        processes[1]["pid"] = "not a number"
        live["processes"] = processes
        object["live"] = live
        let broken = try JSONSerialization.data(withJSONObject: object)
        do {
            _ = try LiveSnapshot.decode(broken, name: "h.json")
            Issue.record("accepted a wrong type")
        } catch {
            #expect(error.description.contains("field live.processes[1].pid: expected Int32"), "\(error)")
        }
    }

    /// The schema accepts what the code writes, and (additionalProperties: false everywhere) names every
    /// field the model encodes.
    @Test func snapshotsValidateAgainstTheSchema() throws {
        let dir = try TestSupport.temporaryDirectory("snapshot-schema")
        defer { try? FileManager.default.removeItem(at: dir) }
        var live = Self.sampleLive()
        // A store entry with full bundle metadata.
        let metadata = BundleMetadata(name: "demo-fix", version: "1", release: "1", uuid: "5e3c0a1b-0000-4000-8000-00000000e2e0",
                                      kind: .user, description: "d", target: BundleTarget(package: "demo-server", version: "1.0", arch: "x86_64"),
                                      entities: [BundleEntity(targetPath: "/usr/sbin/demo-server", targetBuildID: "0a1b2c3d", payload: "fix.o",
                                                              payloadSHA256: String(repeating: "a", count: 64),
                                                              functions: [FunctionPatch(symbol: "f", offset: 16, size: 32, expectedBytes: "f30f1efa", replacement: "f2")],
                                                              imports: ["printf"])],
                                      patches: [BundleSourcePatch(file: "fix.patch", sha256: String(repeating: "b", count: 64))])
        live.store = [InstalledBundle(bundle: ResolvedBundle(metadata: metadata, path: "/var/lib/suture/store/x", digest: String(repeating: "c", count: 64)))]
        live.kernel.blockers = [TransitionBlocker(pid: 702, tid: 702, comm: "kvmlp_busy", patchState: 0, stack: ["[<0>] kvmlp_busy_sleep+0x1e/0x30"])]
        live.unreadable = [UnreadableFact(path: "/proc/1/maps", reason: "permission denied", effect: "pid 1 not inspected")]
        let file = dir.appendingPathComponent("web-1.json")
        try LiveSnapshot.make(live: live, at: Date(), sutureVersion: "0.1.0").encoded().write(to: file)
        let script = """
            import json, sys, jsonschema, referencing
            root = sys.argv[1]
            def load(name): return json.load(open(root + "/schema/" + name))
            live, bundle = load("live-state.schema.json"), load("bundle.schema.json")
            registry = referencing.Registry().with_resources([
                ("https://suture.dev/schema/bundle.schema.json", referencing.Resource.from_contents(bundle)),
                (live["$id"], referencing.Resource.from_contents(live))])
            v = jsonschema.Draft202012Validator(live, registry=registry)
            errors = list(v.iter_errors(json.load(open(sys.argv[2]))))
            for e in errors: print("/".join(map(str, e.absolute_path)), e.message)
            sys.exit(1 if errors else 0)
            """
        let result = try CBuild.run("/usr/bin/env", ["python3", "-c", script, TestSupport.packageRoot.path, file.path])
        #expect(result.status == 0, "schema validation failed: \(result.stdout) \(result.stderr)")
    }

    /// The pull-request comment for two hosts and every action kind, against a golden file.
    @Test func markdownForTwoHostsMatchesTheGoldenFile() throws {
        let loc = SourceLocation(file: "environments/production/web.yaml", line: 9, column: 7)
        let planA = Plan(actions: [
            PlanAction(kind: .deactivate, patch: "old-fix", uuid: "11111111-0000-4000-8000-000000000001", patchKind: .user, pid: 4242,
                       comm: "demo-server", startTime: 987_654, targetPath: "/usr/sbin/demo-server",
                       reason: "declared deactivated; live in 1 of 1 processes of /usr/sbin/demo-server", location: loc),
            PlanAction(kind: .remove, patch: "old-fix", uuid: "11111111-0000-4000-8000-000000000001", patchKind: .user,
                       reason: "declared absent; in the store", location: loc),
            PlanAction(kind: .install, patch: "demo-fix", uuid: "5e3c0a1b-0000-4000-8000-00000000e2e0", patchKind: .user,
                       reason: "declared activated; not in the store", location: loc),
            PlanAction(kind: .activate, patch: "demo-fix", uuid: "5e3c0a1b-0000-4000-8000-00000000e2e0", patchKind: .user, pid: 4242,
                       comm: "demo-server", startTime: 987_654, targetPath: "/usr/sbin/demo-server",
                       reason: "declared activated; live in 0 of 1 processes of /usr/sbin/demo-server", location: loc),
        ], drift: [Drift(kind: .foreign, patch: "livepatch_vendor", message: "kernel livepatch livepatch_vendor is live but not from the Suture store")])
        let planB = Plan()
        let hosts = [
            HostPlan(hostname: "web-1", snapshotPath: "hosts/production/web-1.json", takenAt: "2026-11-29T19:55:00Z",
                     ageSeconds: 300, patchSets: ["web-cves"], plan: planA, live: Self.sampleLive(hostname: "web-1")),
            HostPlan(hostname: "web-2", snapshotPath: "hosts/production/web-2.json", takenAt: "2026-11-29T17:00:00Z",
                     ageSeconds: 10_800, patchSets: [], plan: planB, live: Self.sampleLive(hostname: "web-2")),
        ]
        let markdown = HostPlanRenderer().markdown(hosts)
        let golden = TestSupport.fixtures.appendingPathComponent("golden/plan-two-hosts.md")
        if ProcessInfo.processInfo.environment["SUTURE_UPDATE_GOLDEN"] == "1" {
            try markdown.write(to: golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(markdown == expected, "rerun with SUTURE_UPDATE_GOLDEN=1 and review the diff of \(golden.path)")
        #expect(markdown.contains("| `web-1` | 5 min | 1 | 1 | 1 | 1 | 0 | 1 |"))
        #expect(markdown.contains("| `web-2` | 3 h 0 min | 0 | 0 | 0 | 0 | 0 | 0 |"))
        #expect(markdown.contains("_No PatchSet selects this host._"))
    }
}
