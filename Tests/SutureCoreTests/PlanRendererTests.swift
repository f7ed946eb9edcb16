import Testing
import Foundation
import SutureCore

@Suite("Plan rendering, fingerprint and status")
struct PlanRendererTests {
    let a = PF.userBundle("CVE-2024-0001", uuid: "11111111-0000-4000-8000-000000000001")
    let k = PF.kernelBundle("KPATCH-1", uuid: "aaaaaaaa-0000-4000-8000-00000000000a", module: "livepatch_k1")

    var samplePlan: (Plan, LiveState) {
        let desired = DesiredState(patches: [PF.declare(a, .activated), PF.declare(k, .absent, line: 14)])
        let live = PF.live(store: [PF.installed(k)],
                           processes: [PF.process(1234, markers: []), PF.process(1300, markers: [a.metadata.uuid])],
                           kernel: [PF.lp("livepatch_k1"), PF.lp("livepatch_x")])
        return (Planner.plan(desired: desired, live: live), live)
    }

    @Test func textHasOneLinePerActionAndTheSummary() {
        let (plan, live) = samplePlan
        let text = PlanRenderer().text(plan, live: live)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.last == "Plan: 1 to install, 1 to activate, 1 to deactivate, 1 to remove.")
        #expect(lines.contains("  + install     CVE-2024-0001 [user, 11111111-0000-4000-8000-000000000001] into the store"))
        #expect(lines.contains("  > activate    CVE-2024-0001 in pid 1234 (demo, start 1000): /usr/sbin/demo"))
        #expect(lines.contains("      declared activated; live in 1 of 2 processes of /usr/sbin/demo (manifests/web.yaml:7:7)"))
        #expect(lines.contains("  < deactivate  KPATCH-1 [kernel] livepatch livepatch_k1 on vmlinux"))
        #expect(lines.contains("  - remove      KPATCH-1 [aaaaaaaa-0000-4000-8000-00000000000a, kernel] from the store") == false)
        #expect(lines.contains("  - remove      KPATCH-1 [kernel, aaaaaaaa-0000-4000-8000-00000000000a] from the store"))
        #expect(lines.contains("Drift:"))
        #expect(text.contains("livepatch_x: foreign"))
        #expect(!text.contains("\u{1B}["))
        #expect(PlanRenderer(color: true).text(plan).contains("\u{1B}[32m+\u{1B}[0m"))
    }

    @Test func emptyPlanSaysNoChanges() {
        let plan = Planner.plan(desired: DesiredState(patches: []), live: PF.live())
        #expect(PlanRenderer().text(plan) == "No changes. Live state matches the manifests.\n")
    }

    @Test func errorsAreShownWithTheirLocation() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated)]), live: PF.live(packages: [:]))
        let text = PlanRenderer().text(plan)
        #expect(text.contains("  x manifests/web.yaml:7:7: error: patch 'CVE-2024-0001' cannot be activated: target package demo is not installed"))
        #expect(text.hasSuffix("Error: the plan has 1 error; `suture apply` refuses it. Plan: 0 to install, 0 to activate, 0 to deactivate, 0 to remove.\n"))
    }

    @Test func jsonIsVersionedSortedAndDecodable() throws {
        let (plan, _) = samplePlan
        let json = try PlanRenderer.json(plan)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["format_version"] as? Int == 1)
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["install"] as? Int == 1 && summary["remove"] as? Int == 1 && summary["changes"] as? Bool == true)
        // Keys sorted: "actions" first, "summary" after "notes".
        #expect(json.range(of: "\"actions\"")!.lowerBound < json.range(of: "\"drift\"")!.lowerBound)
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(json.utf8))
        #expect(decoded == plan)
        #expect(json.contains("\"start_time\" : 1000"))
    }

    @Test func markdownListsActions() {
        let (plan, _) = samplePlan
        let md = PlanRenderer().markdown(plan)
        #expect(md.contains("#### Actions, in execution order"))
        #expect(md.contains("- `+` **install** CVE-2024-0001"))
        #expect(md.hasSuffix("**Plan: 1 to install, 1 to activate, 1 to deactivate, 1 to remove.**\n"))
    }

    @Test func fingerprintCoversPlanRelevantFactsOnly() {
        let (_, live) = samplePlan
        let base = LiveStateFingerprint.compute(live)
        var noisy = live
        noisy.hostname = "renamed"
        noisy.kernel.tainted = 32768
        noisy.processes[0].objects[0].loadBias = 1
        #expect(LiveStateFingerprint.compute(noisy) == base)

        var changes: [(String, (inout LiveState) -> Void)] = [
            ("booted again", { $0.bootID = "boot-2" }),
            ("livepatch livepatch_k1: enabled 1 → 0", { $0.kernel.patches[0].enabled = false }),
            ("process 1234 (demo) exited", { $0.processes.removeFirst() }),
            ("process 1234 (demo): patch 11111111-000… became live", {
                $0.processes[0].patches.append(UserPatchMarker(uuid: "11111111-0000-4000-8000-000000000001", address: 1)) }),
            ("exited; pid reused", { $0.processes[0].startTime = 99 }),
            ("store: KPATCH-1 (aaaaaaaa-000…) removed", { $0.store.removeAll() }),
            ("package demo: 1.0-1 → 1.0-2", { $0.packages["demo"] = ["1.0-2"] }),
        ]
        changes.append(("livepatch livepatch_new appeared", { $0.kernel.patches.append(PF.lp("livepatch_new")) }))
        for (expected, change) in changes {
            var changed = live
            change(&changed)
            #expect(LiveStateFingerprint.compute(changed) != base, "\(expected)")
            let diff = LiveStateFingerprint.diff(live, changed)
            #expect(diff.contains { $0.contains(expected) }, "\(expected) not in \(diff)")
        }
        #expect(LiveStateFingerprint.diff(live, noisy).isEmpty)
    }

    @Test func savedPlanRoundTripsAndDetectsStaleness() throws {
        let desired = DesiredState(patches: [PF.declare(a, .activated)])
        let live = PF.live(processes: [PF.process(1234)])
        let saved = SavedPlan(plan: Planner.plan(desired: desired, live: live), desired: desired, live: live)
        let text = try saved.encoded()
        let back = try SavedPlan.decode(Data(text.utf8), file: "plan.json")
        #expect(back == saved)
        #expect(back.staleness(against: live).isEmpty)
        var moved = live
        moved.processes.append(PF.process(1240))
        #expect(back.staleness(against: moved) == ["process 1240 (demo) started"])
        // An edited file is refused.
        let edited = text.replacingOccurrences(of: "\"boot-1\"", with: "\"boot-X\"")
        #expect(throws: DiagnosticError.self) { try SavedPlan.decode(Data(edited.utf8), file: "plan.json") }
        #expect(throws: DiagnosticError.self) { try SavedPlan.decode(Data("{}".utf8), file: "plan.json") }
    }

    @Test func statusReportsSysCareStatesAndConditions() {
        let b = PF.userBundle("CVE-2024-0002", uuid: "22222222-0000-4000-8000-000000000002", symbols: ["g"])
        let c = PF.userBundle("CVE-2024-0003", uuid: "33333333-0000-4000-8000-000000000003", symbols: ["h"])
        let desired = DesiredState(patches: [PF.declare(a, .accepted), PF.declare(b, .activated, line: 9),
                                             PF.declare(c, .deactivated, line: 11), PF.declare(k, .activated, line: 13)])
        let live = PF.live(store: [PF.installed(a), PF.installed(b), PF.installed(c), PF.installed(k)],
                           processes: [PF.process(1, markers: [a.metadata.uuid, b.metadata.uuid]),
                                       PF.process(2, markers: [a.metadata.uuid, "ffffffff-0000-4000-8000-0000000000ff"])],
                           kernel: [PF.lp("livepatch_k1", enabled: true, transition: true)])
        let report = StatusReport.build(desired: desired, live: live)
        let byName = Dictionary(uniqueKeysWithValues: report.patches.map { ($0.name, $0) })
        #expect(byName["CVE-2024-0001"]?.statusText == "ACCEPTED")
        #expect(byName["CVE-2024-0001"]?.processes.map(\.pid) == [1, 2])
        #expect(byName["CVE-2024-0002"]?.statusText == "ACTIVATED (Drifted, Partial)")
        #expect(byName["CVE-2024-0003"]?.statusText == "DEACTIVATED")
        #expect(byName["KPATCH-1"]?.statusText == "DEACTIVATED (Transitioning)")
        #expect(byName["ffffffff-0000-4000-8000-0000000000ff"]?.statusText == "ACTIVATED (Foreign)")
        let text = StatusRenderer().text(report)
        #expect(text.contains("pid 2 (demo, start 1000): not live in /usr/sbin/demo"))
        #expect(text.contains("livepatch livepatch_k1: enabled=1 transition=1"))
    }

    @Test func statusOfAnUndeclaredStorePatchAndANotAppliedOne() {
        let desired = DesiredState(patches: [PF.declare(k, .activated)])
        let live = PF.live(store: [PF.installed(a)])
        let report = StatusReport.build(desired: desired, live: live)
        #expect(report.patches.map(\.statusText) == ["DEACTIVATED", "NOT-APPLIED (Drifted)"])
        #expect(report.patches[0].notes.contains("declared by no manifest"))
    }
}
