import Testing
import PropertyBased
import SutureCore
import Foundation

/// A random scenario built from a list of small numbers (so shrinking simplifies scenarios).
struct Scenario: CustomStringConvertible {
    var desired: DesiredState
    var live: LiveState

    var description: String {
        "desired: \(desired.patches.map { "\($0.name)=\($0.state.rawValue)" }), prune: \(desired.prune); "
            + "store: \(live.store.map { "\($0.bundle.metadata.name)@\($0.bundle.digest)\($0.problems.isEmpty ? "" : "!")" }); "
            + "processes: \(live.processes.map { "\($0.pid):\($0.objects.map { $0.buildID.prefix(4) })\($0.patches.map { "\($0.uuid.prefix(4))/\($0.state?.rawValue ?? "-")" })" }); "
            + "kernel: \(live.kernel.patches.map { "\($0.name):\($0.enabled ? 1 : 0)\($0.transition ? 1 : 0)" })"
    }

    /// Consumes `choices` (cycling) to build desired and live states over a fixed universe of 4 user and 3
    /// kernel bundles.
    init(choices: [Int]) {
        var i = 0
        func pick(_ n: Int) -> Int {
            defer { i += 1 }
            return choices.isEmpty ? 0 : choices[i % choices.count] % n
        }
        let paths = ["/usr/sbin/demo", "/usr/lib/libdemo.so.1"]
        let builds = ["aaaa000000000000000000000000000000000001", "bbbb000000000000000000000000000000000002"]
        var bundles: [ResolvedBundle] = []
        for n in 0..<4 {
            let t = n % 2
            // Symbols are distinct unless the scenario asks for a collision (pick(10) == 0).
            let symbol = pick(10) == 0 ? "shared_fn" : "fn\(n)"
            bundles.append(PF.userBundle("U\(n)", uuid: "0000000\(n)-0000-4000-8000-00000000000\(n)", path: paths[t],
                                         buildID: builds[t], symbols: [symbol]))
        }
        for n in 0..<3 {
            bundles.append(PF.kernelBundle("K\(n)", uuid: "1000000\(n)-0000-4000-8000-00000000000\(n)",
                                           module: "livepatch_k\(n)", replace: n == 2 && pick(2) == 0))
        }
        var patches: [DesiredPatch] = []
        var store: [InstalledBundle] = []
        for (n, bundle) in bundles.enumerated() {
            var declaredBundle = bundle
            if pick(6) == 0 { declaredBundle.digest += "-v2" }
            switch pick(5) {
            case 0: break  // undeclared
            case 1: patches.append(PF.declare(declaredBundle, .accepted, line: 10 + n))
            case 2: patches.append(PF.declare(declaredBundle, .activated, line: 10 + n))
            case 3: patches.append(PF.declare(declaredBundle, .deactivated, line: 10 + n))
            default: patches.append(PF.declare(declaredBundle, .absent, line: 10 + n))
            }
            switch pick(4) {
            case 0: break
            case 1: store.append(PF.installed(bundle, problems: pick(5) == 0 ? ["payload: sha256 mismatch"] : []))
            default: store.append(PF.installed(bundle))
            }
        }
        var processes: [ProcessLiveState] = []
        for pid in 0..<pick(6) {
            let t = pick(2)
            var p = PF.process(Int32(100 + pid), start: UInt64(5000 + pid), path: paths[t],
                               buildID: pick(5) == 0 ? "cccc000000000000000000000000000000000003" : builds[t])
            for (n, bundle) in bundles.prefix(4).enumerated() where pick(3) == 0 {
                p.patches.append(UserPatchMarker(uuid: bundle.metadata.uuid, address: UInt64(0x7000 + n), state: pick(6) == 0 ? .prepared : .active))
            }
            if pick(8) == 0 { p.patches.append(UserPatchMarker(uuid: "f0f0f0f0-0000-4000-8000-0000000000ff", address: 0x9000)) }
            processes.append(p)
        }
        var kernel: [KernelLivePatch] = []
        for n in 0..<3 {
            switch pick(6) {
            case 0, 1: break
            case 2: kernel.append(PF.lp("livepatch_k\(n)"))
            case 3: kernel.append(PF.lp("livepatch_k\(n)", enabled: false))
            case 4: kernel.append(PF.lp("livepatch_k\(n)", enabled: true, transition: true))
            default: kernel.append(PF.lp("livepatch_k\(n)", enabled: false, transition: true))
            }
        }
        if pick(6) == 0 { kernel.append(PF.lp("livepatch_foreign")) }
        desired = DesiredState(patches: patches, prune: pick(2) == 0)
        live = PF.live(store: store, processes: processes, kernel: kernel,
                       packages: pick(10) == 0 ? ["demo": ["0.9-1"]] : ["demo": ["1.0-1"]])
    }
}

/// Applies a plan's effects to a live state the way a successful executor would (store copy, markers,
/// sysfs livepatch entries). The model of "what apply does" the invariants are checked against.
func applyEffects(of plan: Plan, desired: DesiredState, to live: LiveState) -> LiveState {
    var live = live
    let bundles = Dictionary(desired.patches.compactMap { p in p.bundle.map { ($0.metadata.uuid, $0) } }, uniquingKeysWith: { a, _ in a })
    for action in plan.actions {
        switch (action.kind, action.patchKind) {
        case (.install, _):
            live.store.removeAll { $0.uuid == action.uuid }
            live.store.append(PF.installed(bundles[action.uuid]!))
        case (.remove, _):
            live.store.removeAll { $0.uuid == action.uuid }
        case (.activate, .user):
            let i = live.processes.firstIndex { $0.pid == action.pid && $0.startTime == action.startTime }!
            live.processes[i].patches.removeAll { $0.uuid == action.uuid }
            live.processes[i].patches.append(UserPatchMarker(uuid: action.uuid, address: 0xA000, state: .active))
        case (.deactivate, .user):
            let i = live.processes.firstIndex { $0.pid == action.pid && $0.startTime == action.startTime }!
            live.processes[i].patches.removeAll { $0.uuid == action.uuid }
        case (.activate, .kernel):
            let module = action.module!
            let replace = live.store.first { $0.uuid == action.uuid }!.bundle.metadata.entities.first { $0.moduleName == module }!.replace == true
            if replace { live.kernel.patches.removeAll() }
            live.kernel.patches.removeAll { $0.name == module }
            live.kernel.patches.append(PF.lp(module, replace: replace))
        case (.deactivate, .kernel):
            live.kernel.patches.removeAll { $0.name == action.module! }
        }
    }
    return live
}

/// Where `live` does not satisfy `desired`, judged without the planner (an independent oracle).
/// Transitions already moving toward the desired state count as satisfied (the planner waits for them).
func violations(of desired: DesiredState, in live: LiveState) -> [String] {
    var out: [String] = []
    let store = Dictionary(live.store.map { ($0.uuid, $0) }, uniquingKeysWith: { a, _ in a })
    let kernel = Dictionary(live.kernel.patches.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for patch in desired.patches {
        guard let bundle = patch.bundle else { continue }
        let uuid = bundle.metadata.uuid
        let wantLive = patch.state == .activated || patch.state == .accepted
        if patch.state != .absent {
            if let s = store[uuid] {
                if s.bundle.digest != bundle.digest || !s.problems.isEmpty { out.append("\(patch.name): store copy differs") }
            } else {
                out.append("\(patch.name): not in the store")
            }
        } else if store[uuid] != nil {
            out.append("\(patch.name): still in the store")
        }
        switch bundle.metadata.kind {
        case .user:
            for process in live.processes {
                let maps = bundle.metadata.entities.contains { e in process.objects.contains { $0.buildID == e.targetBuildID } }
                let marker = process.patches.first { $0.uuid == uuid }
                if wantLive && maps && (marker == nil || marker?.state == .prepared) { out.append("\(patch.name): not live in \(process.pid)") }
                if !wantLive && marker != nil { out.append("\(patch.name): still in \(process.pid)") }
            }
        case .kernel:
            for module in bundle.metadata.entities.compactMap(\.moduleName) {
                let lp = kernel[module]
                if wantLive && !(lp?.enabled == true) { out.append("\(patch.name): \(module) not enabled") }
                if !wantLive, let lp, !(lp.enabled == false && lp.transition) { out.append("\(patch.name): \(module) still loaded") }
            }
        }
    }
    if desired.prune {
        let claimed = Set(desired.patches.compactMap(\.uuid))
        for entry in live.store where !claimed.contains(entry.uuid) { out.append("\(entry.bundle.metadata.name): undeclared, not pruned") }
    }
    return out
}

/// A deterministic shuffle (xorshift) so order-independence failures reproduce from the input.
func shuffled<T>(_ array: [T], seed: Int) -> [T] {
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    var copy = array
    guard copy.count > 1 else { return copy }
    for i in stride(from: copy.count - 1, to: 0, by: -1) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        copy.swapAt(i, Int(state % UInt64(i + 1)))
    }
    return copy
}

@Suite("Planner properties")
struct PlannerPropertyTests {
    static let choices = Gen.int(in: 0...1000).array(of: 1...60)

    @Test func applyingAPlanConverges() async {
        await propertyCheck(count: 400, input: Self.choices) { choices in
            let scenario = Scenario(choices: choices)
            let plan = Planner.plan(desired: scenario.desired, live: scenario.live)
            guard plan.errors.isEmpty else { return }
            let after = applyEffects(of: plan, desired: scenario.desired, to: scenario.live)
            let again = Planner.plan(desired: scenario.desired, live: after)
            #expect(again.actions.isEmpty, "\(scenario)\nfirst: \(plan.steps)\nsecond: \(again.steps)")
            #expect(again.errors.isEmpty)
            // And the result satisfies the manifests, judged independently of the planner.
            #expect(violations(of: scenario.desired, in: after).isEmpty,
                    "\(scenario)\nplan: \(plan.steps)\nviolations: \(violations(of: scenario.desired, in: after))")
        }
    }

    @Test func aConvergedStatePlansNothingAndHasNoPartialOrForeignOfOurs() async {
        await propertyCheck(count: 300, input: Self.choices) { choices in
            let scenario = Scenario(choices: choices)
            let plan = Planner.plan(desired: scenario.desired, live: scenario.live)
            guard plan.errors.isEmpty else { return }
            let converged = applyEffects(of: plan, desired: scenario.desired, to: scenario.live)
            let again = Planner.plan(desired: scenario.desired, live: converged)
            // Applying an empty plan changes nothing, and planning is idempotent.
            #expect(applyEffects(of: again, desired: scenario.desired, to: converged) == converged)
            #expect(again.drift(.partial).isEmpty, "\(scenario)")
            #expect(Planner.plan(desired: scenario.desired, live: converged) == again)
        }
    }

    @Test func outputIsIndependentOfInputOrder() async throws {
        await propertyCheck(count: 300, input: Self.choices, Gen.int(in: 1...1_000_000)) { choices, seed in
            let scenario = Scenario(choices: choices)
            var desired = scenario.desired
            var live = scenario.live
            desired.patches = shuffled(desired.patches, seed: seed)
            live.store = shuffled(live.store, seed: seed + 1)
            live.processes = shuffled(live.processes, seed: seed + 2)
            for i in live.processes.indices {
                live.processes[i].patches = shuffled(live.processes[i].patches, seed: seed + 3 + i)
                live.processes[i].objects = shuffled(live.processes[i].objects, seed: seed + 4 + i)
            }
            live.kernel.patches = shuffled(live.kernel.patches, seed: seed + 5)
            let a = Planner.plan(desired: scenario.desired, live: scenario.live)
            let b = Planner.plan(desired: desired, live: live)
            #expect((try? PlanRenderer.json(a)) == (try? PlanRenderer.json(b)), "\(scenario)")
            #expect(PlanRenderer().text(a) == PlanRenderer().text(b))
            #expect(LiveStateFingerprint.compute(scenario.live) == LiveStateFingerprint.compute(live))
            let sa = try? PlanRenderer.encodeJSON(StatusReport.build(desired: scenario.desired, live: scenario.live))
            let sb = try? PlanRenderer.encodeJSON(StatusReport.build(desired: desired, live: live))
            #expect(sa == sb)
        }
    }

    @Test func everyActionHasAReasonAndOrderingRulesHold() async {
        await propertyCheck(count: 300, input: Self.choices) { choices in
            let scenario = Scenario(choices: choices)
            let plan = Planner.plan(desired: scenario.desired, live: scenario.live)
            #expect(plan.actions.allSatisfy { !$0.reason.isEmpty })
            for (i, action) in plan.actions.enumerated() {
                let later = plan.actions[(i + 1)...]
                // install before activate; deactivate before remove, for the same patch.
                if action.kind == .activate { #expect(!later.contains { $0.kind == .install && $0.uuid == action.uuid }) }
                if action.kind == .remove { #expect(!later.contains { $0.kind == .deactivate && $0.uuid == action.uuid }) }
                // Deactivations precede activations.
                if action.kind == .activate { #expect(!later.contains { $0.kind == .deactivate }) }
                // User actions carry their process; kernel ones their module.
                if action.patchKind == .user && (action.kind == .activate || action.kind == .deactivate) {
                    #expect(action.pid != nil && action.startTime != nil && action.comm != nil)
                }
                if action.patchKind == .kernel && (action.kind == .activate || action.kind == .deactivate) {
                    #expect(action.module != nil)
                }
            }
            // Kernel actions are consecutive within each phase.
            for kind in [ActionKind.deactivate, .activate] {
                let kinds = plan.actions.filter { $0.kind == kind }.map(\.patchKind)
                if let lastKernel = kinds.lastIndex(of: .kernel) { #expect(!kinds[..<lastKernel].contains(.user)) }
            }
        }
    }
}

@Suite("Planner scenario generator")
struct ScenarioGeneratorTests {
    /// Guards the property tests against a degenerate generator: many scenarios must produce error-free
    /// plans with actions of every kind and both patch kinds, and some must produce errors.
    @Test func scenariosCoverEveryActionKind() {
        var withActions = 0, withErrors = 0
        var kinds: Set<String> = []
        var driftKinds: Set<Drift.Kind> = []
        for seed in 0..<600 {
            let choices = (0..<40).map { ($0 * 7919 + seed * 104_729 + ($0 * seed) % 997) % 1000 }
            let plan = Planner.plan(desired: Scenario(choices: choices).desired, live: Scenario(choices: choices).live)
            if !plan.errors.isEmpty { withErrors += 1; continue }
            if !plan.actions.isEmpty { withActions += 1 }
            for a in plan.actions { kinds.insert("\(a.kind.rawValue)/\(a.patchKind.rawValue)") }
            for d in plan.drift { driftKinds.insert(d.kind) }
        }
        #expect(withActions > 150, "\(withActions)")
        #expect(withErrors > 10, "\(withErrors)")
        #expect(kinds.count == 8, "\(kinds.sorted())")
        #expect(driftKinds.isSuperset(of: [.foreign, .partial, .stalledTransition, .targetNotRunning, .undeclared, .corruptStore]), "\(driftKinds)")
    }
}
