import Foundation
import Testing
@testable import SutureCore

/// A saved plan is judged stale on the live facts it depends on (`PlanDependencies`), not on the whole host.
@Suite struct SavedPlanStalenessTests {
    static let fix = PF.userBundle("fix", uuid: "11111111-1111-1111-1111-111111111111")
    static let foreign = "99999999-9999-9999-9999-999999999999"
    static let desired = DesiredState(patches: [PF.declare(fix, .activated)])

    /// Store holds the bundle; pid 100 runs the target; pid 200 is another program.
    static func live(_ edit: (inout LiveState) -> Void = { _ in }) -> LiveState {
        var l = PF.live(store: [PF.installed(fix)],
                        processes: [PF.process(100), PF.process(200, comm: "other", path: "/usr/bin/other", buildID: PF.otherBuild)])
        edit(&l)
        return l
    }

    static func saved() throws -> SavedPlan {
        let l = live()
        let plan = Planner.plan(desired: desired, live: l)
        #expect(plan.steps == ["activate fix 100"])
        let saved = SavedPlan(plan: plan, desired: desired, live: l)
        // Round trip through the file format keeps it checkable.
        return try SavedPlan.decode(Data(try saved.encoded().utf8), file: "plan.json")
    }

    @Test func unrelatedProcessesDoNotMakeThePlanStale() throws {
        let saved = try Self.saved()
        #expect(saved.formatVersion == 2)
        #expect(saved.staleness(against: Self.live()).isEmpty)
        // Another program gains a foreign patch marker (another service's patch became live).
        #expect(saved.staleness(against: Self.live { $0.processes[1].patches = [UserPatchMarker(uuid: Self.foreign, address: 0x7000_0000, state: .active)] }).isEmpty)
        // Unrelated processes start and exit, one of them carrying a foreign marker.
        #expect(saved.staleness(against: Self.live {
            $0.processes.remove(at: 1)
            $0.processes.append(PF.process(300, comm: "svc", path: "/usr/bin/svc", buildID: PF.otherBuild, markers: [Self.foreign]))
        }).isEmpty)
        // An unrelated package and an unrelated livepatch change.
        #expect(saved.staleness(against: Self.live {
            $0.packages["nginx"] = ["1.22"]
            $0.kernel.patches = [PF.lp("livepatch_other")]
        }).isEmpty)
    }

    @Test func relevantChangesStillMakeThePlanStale() throws {
        let saved = try Self.saved()
        let cases: [(String, (inout LiveState) -> Void)] = [
            ("process 100 (demo) exited", { $0.processes.remove(at: 0) }),
            ("pid reused", { $0.processes[0].startTime = 2000 }),
            ("process 101 (demo) started", { $0.processes.append(PF.process(101)) }),
            ("patch 11111111-111… became live", { $0.processes[0].patches = [UserPatchMarker(uuid: Self.fix.metadata.uuid, address: 0x7000_0000, state: .active)] }),
            ("patch 99999999-999… became live", { $0.processes[0].patches = [UserPatchMarker(uuid: Self.foreign, address: 0x7000_0000, state: .active)] }),
            ("process 200 (other) started", { // it now carries our marker, so it counts
                $0.processes[1].patches = [UserPatchMarker(uuid: Self.fix.metadata.uuid, address: 0x7000_0000, state: .prepared)] }),
            ("digest", { $0.store = [PF.installed(PF.userBundle("fix", uuid: Self.fix.metadata.uuid, digest: "d-changed"))] }),
            ("fails verification", { $0.store = [PF.installed(Self.fix, problems: ["payload digest mismatch"])] }),
            ("removed", { $0.store = [] }),
            ("package demo", { $0.packages["demo"] = ["1.0-2"] }),
            ("booted again", { $0.bootID = "boot-2" }),
        ]
        for (expected, edit) in cases {
            let lines = saved.staleness(against: Self.live(edit))
            #expect(!lines.isEmpty, "\(expected)")
            #expect(lines.contains { $0.contains(expected) }, "\(expected): \(lines)")
        }

        // A marker state change on the relevant process, starting from a plan made with the patch prepared.
        let prepared = Self.live { $0.processes[0].patches = [UserPatchMarker(uuid: Self.fix.metadata.uuid, address: 0x7000_0000, state: .prepared)] }
        let plan = SavedPlan(plan: Planner.plan(desired: Self.desired, live: prepared), desired: Self.desired, live: prepared)
        let active = Self.live { $0.processes[0].patches = [UserPatchMarker(uuid: Self.fix.metadata.uuid, address: 0x7000_0000, state: .active)] }
        #expect(plan.staleness(against: active).contains { $0.contains("state prepared → active") })
    }

    @Test func kernelPlansDependOnEveryKernelFact() throws {
        let kfix = PF.kernelBundle("kfix", uuid: "22222222-2222-2222-2222-222222222222", module: "livepatch_kfix")
        let desired = DesiredState(patches: [PF.declare(kfix, .activated)])
        let l = PF.live()
        let saved = SavedPlan(plan: Planner.plan(desired: desired, live: l), desired: desired, live: l)
        var other = l
        other.kernel.patches = [PF.lp("livepatch_other")]
        #expect(saved.staleness(against: other).contains { $0.contains("livepatch livepatch_other appeared") })
        other = l
        other.processes = [PF.process(300, comm: "svc", path: "/usr/bin/svc", buildID: PF.otherBuild, markers: [Self.foreign])]
        #expect(saved.staleness(against: other).isEmpty)
    }

    @Test func anEditedDependsFingerprintIsRejectedAndVersion1FilesAreJudgedWhole() throws {
        var saved = try Self.saved()
        saved.dependsFingerprint = "sha256:00"
        #expect(throws: DiagnosticError.self) { try SavedPlan.decode(Data(try saved.encoded().utf8), file: "plan.json") }

        var v1 = try Self.saved()
        v1.formatVersion = 1
        v1.dependsFingerprint = nil
        let decoded = try SavedPlan.decode(Data(try v1.encoded().utf8), file: "plan.json")
        #expect(decoded.dependsFingerprint == nil)
        #expect(decoded.staleness(against: Self.live()).isEmpty)
        #expect(!decoded.staleness(against: Self.live { $0.processes.remove(at: 1) }).isEmpty)
    }
}
