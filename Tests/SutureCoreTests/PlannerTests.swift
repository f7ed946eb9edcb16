import Testing
import SutureCore

@Suite("Planner rules")
struct PlannerTests {
    let a = PF.userBundle("CVE-2024-0001", uuid: "11111111-0000-4000-8000-000000000001")
    let b = PF.userBundle("CVE-2024-0002", uuid: "22222222-0000-4000-8000-000000000002", symbols: ["send_reply"])

    @Test func activatesWhereMissingAfterInstall() {
        let desired = DesiredState(patches: [PF.declare(a, .activated)])
        let live = PF.live(processes: [PF.process(10), PF.process(20), PF.process(30, buildID: PF.otherBuild)])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.steps == ["install CVE-2024-0001", "activate CVE-2024-0001 10", "activate CVE-2024-0001 20"])
        let act = plan.actions[1]
        #expect(act.startTime == 1000 && act.comm == "demo" && act.targetPath == PF.demo)
        #expect(act.reason == "declared activated; live in 0 of 2 processes of /usr/sbin/demo")
        #expect(act.location == SourceLocation(file: PF.manifest, line: 7, column: 7))
        // pid 30 maps the path with another build-id: reported, not patched.
        #expect(plan.drift(.targetPackageMismatch).count == 1)
        #expect(plan.drift(.targetPackageMismatch)[0].message.contains("pid 30 (demo)"))
        #expect(plan.errors.isEmpty)
        #expect(plan.liveFingerprint.hasPrefix("sha256:"))
    }

    @Test func partialLiveReportsDriftAndActivatesTheRest() {
        let desired = DesiredState(patches: [PF.declare(a, .accepted)])
        let live = PF.live(store: [PF.installed(a)],
                           processes: [PF.process(1, markers: [a.metadata.uuid]), PF.process(2, markers: [a.metadata.uuid]),
                                       PF.process(3, markers: [a.metadata.uuid]), PF.process(4), PF.process(5)])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.steps == ["activate CVE-2024-0001 4", "activate CVE-2024-0001 5"])
        #expect(plan.actions[0].reason == "declared accepted; live in 3 of 5 processes of /usr/sbin/demo")
        #expect(plan.drift(.partial).map(\.message) == ["live in 3 of 5 processes of /usr/sbin/demo"])
    }

    @Test func convergedUserPatchPlansNothing() {
        let desired = DesiredState(patches: [PF.declare(a, .activated)])
        let live = PF.live(store: [PF.installed(a)], processes: [PF.process(1, markers: [a.metadata.uuid])])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.actions.isEmpty && plan.drift.isEmpty && plan.errors.isEmpty)
        #expect(PlanRenderer.summary(plan) == "No changes. Live state matches the manifests.")
    }

    @Test func preparedMarkerIsNotLive() {
        var process = PF.process(1, markers: [a.metadata.uuid])
        process.patches[0].state = .prepared
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated)]),
                                live: PF.live(store: [PF.installed(a)], processes: [process]))
        #expect(plan.steps == ["activate CVE-2024-0001 1"])
    }

    /// Regression (adversarial review): an ACTIVE region whose entry bytes were restored by another tool
    /// was reported as live; "No changes" while the process ran the old code.
    @Test func detachedMarkerIsNotLiveAndIsActivatedAgain() {
        var process = PF.process(1, markers: [a.metadata.uuid])
        process.patches[0].state = .detached
        let live = PF.live(store: [PF.installed(a)], processes: [process])
        let desired = DesiredState(patches: [PF.declare(a, .activated)])
        #expect(Planner.plan(desired: desired, live: live).steps == ["activate CVE-2024-0001 1"])
        let status = StatusReport.build(desired: desired, live: live)
        #expect(status.patches.first?.processes.first?.live == false)
        #expect(status.patches.first?.processes.first?.markerState == "detached")
    }

    @Test func deactivatedAndAbsentTakeDownThenRemove() {
        let desired = DesiredState(patches: [PF.declare(a, .deactivated), PF.declare(b, .absent, line: 12)])
        let live = PF.live(store: [PF.installed(a), PF.installed(b)],
                           processes: [PF.process(1, markers: [a.metadata.uuid, b.metadata.uuid]), PF.process(2)])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.steps == ["deactivate CVE-2024-0001 1", "deactivate CVE-2024-0002 1", "remove CVE-2024-0002"])
        #expect(plan.actions[0].reason == "declared deactivated; live in 1 of 2 processes of /usr/sbin/demo")
        #expect(plan.actions[2].location?.line == 12)
    }

    @Test func deactivatedNotInStoreIsInstalled() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .deactivated)]), live: PF.live())
        #expect(plan.steps == ["install CVE-2024-0001"])
        #expect(plan.actions[0].reason == "declared deactivated; not in the store")
    }

    @Test func absentWithoutBundleRemovesByName() {
        let desired = DesiredState(patches: [PF.declare(nil, name: "CVE-2024-0001", .absent)])
        let live = PF.live(store: [PF.installed(a)], processes: [PF.process(1, markers: [a.metadata.uuid])])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.steps == ["deactivate CVE-2024-0001 1", "remove CVE-2024-0001"])
        #expect(plan.drift.isEmpty)
    }

    @Test func digestChangeReinstallsAndReactivates() {
        let newA = PF.userBundle("CVE-2024-0001", uuid: a.metadata.uuid, digest: "new-digest")
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(newA, .activated)]),
                                live: PF.live(store: [PF.installed(a)], processes: [PF.process(1, markers: [a.metadata.uuid])]))
        #expect(plan.steps == ["install CVE-2024-0001", "deactivate CVE-2024-0001 1", "activate CVE-2024-0001 1"])
        #expect(plan.actions[0].reason.contains("the store holds digest"))
    }

    @Test func corruptStoreEntryIsReinstalledAndReported() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .deactivated)]),
                                live: PF.live(store: [PF.installed(a, problems: ["payload CVE-2024-0001.o: sha256 mismatch"])]))
        #expect(plan.steps == ["install CVE-2024-0001"])
        #expect(plan.drift(.corruptStore).count == 1)
        #expect(plan.drift(.corruptStore)[0].message.contains("sha256 mismatch"))
    }

    @Test func targetNotRunningIsANote() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated)]),
                                live: PF.live(store: [PF.installed(a)]))
        #expect(plan.actions.isEmpty)
        #expect(plan.drift(.targetNotRunning).count == 1)
        #expect(plan.drift(.targetNotRunning)[0].message.hasPrefix("no running process maps /usr/sbin/demo"))
    }

    @Test func packageNotInstalledOrOtherVersionIsAnError() {
        let missing = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated)]),
                                   live: PF.live(processes: [PF.process(1)], packages: [:]))
        #expect(missing.actions.isEmpty)
        #expect(missing.errors.count == 1)
        #expect(missing.errors[0].location == SourceLocation(file: PF.manifest, line: 7, column: 7))
        #expect(missing.errors[0].message.contains("target package demo is not installed"))

        let other = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated)]),
                                 live: PF.live(processes: [PF.process(1)], packages: ["demo": ["2.0-1"]]))
        #expect(other.errors.map(\.message) == ["patch 'CVE-2024-0001' cannot be activated: target package demo is at version 2.0-1, the manifest targets 1.0-1"])
        #expect(other.errors[0].description.hasPrefix("manifests/web.yaml:7:7: error: "))

        // Only stored (deactivated): drift, not an error.
        let kept = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .deactivated)]),
                                live: PF.live(packages: [:]))
        #expect(kept.errors.isEmpty)
        #expect(kept.drift(.targetPackageMismatch).count == 1)
        #expect(kept.steps == ["install CVE-2024-0001"])
    }

    @Test func undeclaredStorePatchesAreReportedOrPruned() {
        let live = PF.live(store: [PF.installed(b)], processes: [PF.process(1, markers: [b.metadata.uuid])])
        let report = Planner.plan(desired: DesiredState(patches: []), live: live)
        #expect(report.actions.isEmpty)
        #expect(report.drift(.undeclared).count == 1)
        #expect(report.drift(.undeclared)[0].message.contains("live in 1 process"))

        let prune = Planner.plan(desired: DesiredState(patches: [], prune: true), live: live)
        #expect(prune.steps == ["deactivate CVE-2024-0002 1", "remove CVE-2024-0002"])
        #expect(prune.actions.allSatisfy { $0.location == nil && $0.reason.hasPrefix("not declared by any manifest (prune)") })
        #expect(prune.drift(.undeclared).isEmpty)
    }

    @Test func foreignMarkersAndLivepatchesAreReportedNeverTouched() {
        let live = PF.live(processes: [PF.process(1, markers: ["99999999-0000-4000-8000-000000000009"])],
                           kernel: [PF.lp("livepatch_other")])
        let plan = Planner.plan(desired: DesiredState(patches: [], prune: true), live: live)
        #expect(plan.actions.isEmpty)
        #expect(plan.drift(.foreign).map(\.patch) == ["99999999-0000-4000-8000-000000000009", "livepatch_other"])
    }

    @Test func sameFunctionConflictIsAnError() {
        let c = PF.userBundle("CVE-2024-0003", uuid: "33333333-0000-4000-8000-000000000003", symbols: ["parse_request"])
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated), PF.declare(c, .activated, line: 20)]),
                                live: PF.live(processes: [PF.process(1)]))
        #expect(plan.errors.count == 1)
        #expect(plan.errors[0].message.contains("both replace parse_request in /usr/sbin/demo"))
        #expect(!plan.actions.contains { $0.kind == .activate })
    }

    @Test func deactivationComesBeforeActivationOfTheSameFunction() {
        // Swap a fix: the old patch of parse_request goes, the new one comes, in the same process.
        let c = PF.userBundle("AAA-new-fix", uuid: "33333333-0000-4000-8000-000000000003", symbols: ["parse_request"])
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .absent), PF.declare(c, .activated, line: 20)]),
                                live: PF.live(store: [PF.installed(a), PF.installed(c)], processes: [PF.process(1, markers: [a.metadata.uuid])]))
        #expect(plan.steps == ["deactivate CVE-2024-0001 1", "activate AAA-new-fix 1", "remove CVE-2024-0001"])
        #expect(plan.errors.isEmpty)
    }

    @Test func processWithTwoPatchesGetsOneActionEach() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(a, .activated), PF.declare(b, .activated)]),
                                live: PF.live(store: [PF.installed(a), PF.installed(b)], processes: [PF.process(7)]))
        #expect(plan.steps == ["activate CVE-2024-0001 7", "activate CVE-2024-0002 7"])
    }
}

@Suite("Planner kernel rules")
struct PlannerKernelTests {
    let k1 = PF.kernelBundle("KPATCH-1", uuid: "aaaaaaaa-0000-4000-8000-00000000000a", module: "livepatch_k1")
    let k2 = PF.kernelBundle("KPATCH-2", uuid: "bbbbbbbb-0000-4000-8000-00000000000b", module: "livepatch_k2")
    let cumulative = PF.kernelBundle("KPATCH-CUM", uuid: "cccccccc-0000-4000-8000-00000000000c", module: "livepatch_cum", replace: true)

    @Test func kernelLiveOnlyWhenEnabledAndTransitionDone() {
        let desired = DesiredState(patches: [PF.declare(k1, .activated)])
        let notLoaded = Planner.plan(desired: desired, live: PF.live(store: [PF.installed(k1)]))
        #expect(notLoaded.steps == ["activate KPATCH-1 livepatch_k1"])
        #expect(notLoaded.actions[0].reason == "declared activated; livepatch livepatch_k1 is not loaded")
        #expect(notLoaded.actions[0].pid == nil && notLoaded.actions[0].targetPath == "vmlinux")

        let disabled = Planner.plan(desired: desired, live: PF.live(store: [PF.installed(k1)], kernel: [PF.lp("livepatch_k1", enabled: false)]))
        #expect(disabled.steps == ["activate KPATCH-1 livepatch_k1"])
        #expect(disabled.actions[0].reason.contains("loaded but disabled"))

        let live = Planner.plan(desired: desired, live: PF.live(store: [PF.installed(k1)], kernel: [PF.lp("livepatch_k1")]))
        #expect(live.actions.isEmpty && live.drift.isEmpty)
    }

    @Test func transitionInProgressIsDriftWithBlockers() {
        let desired = DesiredState(patches: [PF.declare(k1, .activated)])
        let live = PF.live(store: [PF.installed(k1)], kernel: [PF.lp("livepatch_k1", enabled: true, transition: true)],
                           blockers: [TransitionBlocker(pid: 812, tid: 815, comm: "worker", patchState: 0)])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.actions.isEmpty)
        let d = plan.drift(.stalledTransition)
        #expect(d.count == 1)
        #expect(d[0].patch == "KPATCH-1")
        #expect(d[0].message.contains("transition to enabled in progress"))
        #expect(d[0].message.contains("worker[812/815]"))
    }

    @Test func declaredAbsentKernelDeactivatesThenRemoves() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(k1, .absent)]),
                                live: PF.live(store: [PF.installed(k1)], kernel: [PF.lp("livepatch_k1")]))
        #expect(plan.steps == ["deactivate KPATCH-1 livepatch_k1", "remove KPATCH-1"])
        #expect(plan.actions[0].reason == "declared absent; livepatch livepatch_k1 is enabled")
    }

    @Test func kernelActionsAreSerializedBeforeUserOnes() {
        let u = PF.userBundle("USER-1", uuid: "11111111-0000-4000-8000-000000000001")
        let desired = DesiredState(patches: [PF.declare(u, .activated), PF.declare(k2, .activated), PF.declare(k1, .deactivated)])
        let live = PF.live(store: [PF.installed(u), PF.installed(k1), PF.installed(k2)], processes: [PF.process(5)],
                           kernel: [PF.lp("livepatch_k1")])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.steps == ["deactivate KPATCH-1 livepatch_k1", "activate KPATCH-2 livepatch_k2", "activate USER-1 5"])
    }

    @Test func atomicReplaceMakesDeactivationsImplicit() {
        let desired = DesiredState(patches: [PF.declare(cumulative, .activated), PF.declare(k1, .absent), PF.declare(k2, .deactivated)])
        let live = PF.live(store: [PF.installed(cumulative), PF.installed(k1), PF.installed(k2)],
                           kernel: [PF.lp("livepatch_k1"), PF.lp("livepatch_k2"), PF.lp("livepatch_foreign")])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.steps == ["activate KPATCH-CUM livepatch_cum", "remove KPATCH-1"])
        #expect(plan.actions[0].reason.contains("atomic replace"))
        #expect(plan.notes.count == 3)
        #expect(plan.notes.contains { $0.hasPrefix("livepatch livepatch_k1 (KPATCH-1) is disabled implicitly by the atomic replace of livepatch_cum") })
        #expect(plan.notes.contains { $0.hasPrefix("livepatch livepatch_foreign is disabled too") })
        #expect(plan.errors.isEmpty)
    }

    @Test func atomicReplaceOverADeclaredLivePatchIsAnError() {
        let desired = DesiredState(patches: [PF.declare(cumulative, .activated), PF.declare(k1, .accepted, line: 30)])
        let live = PF.live(store: [PF.installed(cumulative), PF.installed(k1)], kernel: [PF.lp("livepatch_k1")])
        let plan = Planner.plan(desired: desired, live: live)
        #expect(plan.errors.count == 1)
        #expect(plan.errors[0].location?.line == 30)
        #expect(plan.errors[0].message.contains("would disable livepatch livepatch_k1"))
    }

    @Test func replaceActivationGoesBeforeOtherKernelActivations() {
        let desired = DesiredState(patches: [PF.declare(cumulative, .activated), PF.declare(k1, .activated)])
        let plan = Planner.plan(desired: desired, live: PF.live(store: [PF.installed(cumulative), PF.installed(k1)]))
        #expect(plan.steps == ["activate KPATCH-CUM livepatch_cum", "activate KPATCH-1 livepatch_k1"])
    }

    @Test func kernelReleaseMismatchAndMissingLivepatchSupportAreErrors() {
        var live = PF.live(store: [PF.installed(k1)])
        live.kernelRelease = "6.1.0-58-amd64"
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(k1, .activated)]), live: live)
        #expect(plan.errors.map(\.message) == ["patch 'KPATCH-1' cannot be activated: the running kernel is 6.1.0-58-amd64, the manifest targets kernel 6.1.0-57-amd64"])

        var unsupported = PF.live(store: [PF.installed(k1)])
        unsupported.kernel.livepatchSupported = false
        let plan2 = Planner.plan(desired: DesiredState(patches: [PF.declare(k1, .activated)]), live: unsupported)
        #expect(plan2.errors.count == 1 && plan2.actions.isEmpty)
    }

    @Test func lingeringModulesAreNotedAndFingerprinted() {
        var live = PF.live(store: [PF.installed(k1)])
        let before = LiveStateFingerprint.compute(live)
        live.kernel.livepatchModules = ["livepatch_k1": KernelModuleInfo(refcount: 0, taint: "K")]
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(k1, .deactivated)]), live: live)
        #expect(plan.actions.isEmpty)
        #expect(plan.notes == ["livepatch module livepatch_k1 (KPATCH-1) is loaded but not registered (disabled or replaced); it stays in memory until unloaded (rmmod livepatch_k1)"])
        #expect(plan.liveFingerprint != before)
        #expect(LiveStateFingerprint.diff(PF.live(store: [PF.installed(k1)]), live) == ["livepatch module livepatch_k1 loaded"])
    }

    @Test func foreignLivepatchWithADeclaredNameIsExplained() {
        let plan = Planner.plan(desired: DesiredState(patches: [PF.declare(k1, .activated)]),
                                live: PF.live(kernel: [PF.lp("livepatch_k1")]))
        #expect(plan.steps == ["install KPATCH-1"])
        #expect(plan.drift(.foreign).count == 1)
        #expect(plan.drift(.foreign)[0].message.contains("matches declared patch 'KPATCH-1'"))
    }
}
