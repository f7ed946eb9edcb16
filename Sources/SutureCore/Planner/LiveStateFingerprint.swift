import Crypto

/// A digest of the plan-relevant facts of a `LiveState`, so that `suture apply PLANFILE` can refuse a plan
/// made from a live state that has changed since (Terraform's "saved plan is stale"), plus a readable diff.
///
/// Covered facts: boot id, kernel release, livepatch support, every `/sys/kernel/livepatch` entry
/// (name, enabled, transition, replace), loaded livepatch module names, every process (pid, start time, mapped target objects by path
/// and build-id, patch markers by uuid and state), the store (uuid → digest, and whether it verified),
/// and installed package versions. Not covered: hostname, labels, load biases, inodes, taint, blockers
/// and unreadable facts (they do not change what the plan does).
public enum LiveStateFingerprint {
    /// `sha256:` followed by the lower-case hex sha256 of `canonicalEncoding(live)`.
    public static func compute(_ live: LiveState) -> String {
        let digest = SHA256.hash(data: Array(canonicalEncoding(live).utf8))
        return "sha256:" + digest.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The canonical text the fingerprint hashes: one record per line, `tag` then length-prefixed fields
    /// (`<utf8 byte count>:<value>`), every list sorted. Independent of input order.
    public static func canonicalEncoding(_ live: LiveState) -> String {
        let live = live.canonicalized()
        var out = ""
        func record(_ tag: String, _ fields: [String]) {
            out += tag
            for field in fields { out += " \(field.utf8.count):\(field)" }
            out += "\n"
        }
        record("v", ["1"])
        record("boot", [live.bootID])
        record("kernel", [live.kernelRelease, live.kernel.livepatchSupported ? "1" : "0"])
        for lp in live.kernel.patches {
            record("livepatch", [lp.name, lp.enabled ? "1" : "0", lp.transition ? "1" : "0",
                                 lp.replace.map { $0 ? "1" : "0" } ?? "-"])
        }
        for module in live.kernel.livepatchModules.keys.sorted() { record("module", [module]) }
        for process in live.processes {
            record("process", [String(process.pid), String(process.startTime)])
            for object in process.objects { record("object", [object.path, object.buildID.lowercased()]) }
            for marker in process.patches { record("marker", [marker.uuid, marker.state?.rawValue ?? "-"]) }
        }
        for entry in live.store {
            record("store", [entry.uuid, entry.bundle.digest, entry.problems.isEmpty ? "ok" : "corrupt"])
        }
        for name in live.packages.keys.sorted() {
            record("package", [name] + (live.packages[name] ?? []))
        }
        return out
    }

    /// Human-readable differences between two live states, in a fixed order (reboot, kernel, livepatches,
    /// processes by pid, store by uuid, packages by name); empty when the fingerprints are equal.
    ///
    /// Example lines: `booted again (boot id 1f2e… → 9a8b…)`, `livepatch lp_x: enabled 0 → 1`,
    /// `process 1234 (demo) exited`, `process 1234 (demo): patch 5e3c… became live`,
    /// `store: 5e3c… installed (digest ab12…)`.
    public static func diff(_ old: LiveState, _ new: LiveState) -> [String] {
        let old = old.canonicalized(), new = new.canonicalized()
        var lines: [String] = []
        if old.bootID != new.bootID {
            lines.append("booted again (boot id \(short(old.bootID)) → \(short(new.bootID)))")
        }
        if old.kernelRelease != new.kernelRelease {
            lines.append("kernel release \(old.kernelRelease) → \(new.kernelRelease)")
        }
        if old.kernel.livepatchSupported != new.kernel.livepatchSupported {
            lines.append("livepatch support \(old.kernel.livepatchSupported ? "present" : "absent") → \(new.kernel.livepatchSupported ? "present" : "absent")")
        }

        let oldLP = Dictionary(old.kernel.patches.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newLP = Dictionary(new.kernel.patches.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in Set(oldLP.keys).union(newLP.keys).sorted() {
            switch (oldLP[name], newLP[name]) {
            case let (nil, b?): lines.append("livepatch \(name) appeared (enabled=\(bit(b.enabled)), transition=\(bit(b.transition)))")
            case (_?, nil): lines.append("livepatch \(name) disappeared")
            case let (a?, b?):
                if a.enabled != b.enabled { lines.append("livepatch \(name): enabled \(bit(a.enabled)) → \(bit(b.enabled))") }
                if a.transition != b.transition { lines.append("livepatch \(name): transition \(bit(a.transition)) → \(bit(b.transition))") }
                if a.replace != b.replace { lines.append("livepatch \(name): replace changed") }
            case (nil, nil): break
            }
        }

        let oldM = Set(old.kernel.livepatchModules.keys), newM = Set(new.kernel.livepatchModules.keys)
        for m in newM.subtracting(oldM).sorted() { lines.append("livepatch module \(m) loaded") }
        for m in oldM.subtracting(newM).sorted() { lines.append("livepatch module \(m) unloaded") }

        let oldP = Dictionary(old.processes.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        let newP = Dictionary(new.processes.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        for pid in Set(oldP.keys).union(newP.keys).sorted() {
            switch (oldP[pid], newP[pid]) {
            case let (a?, nil): lines.append("process \(pid) (\(a.comm)) exited")
            case let (nil, b?): lines.append("process \(pid) (\(b.comm)) started")
            case let (a?, b?):
                if a.startTime != b.startTime {
                    lines.append("process \(pid) (\(a.comm)) exited; pid reused by \(b.comm) (start time \(a.startTime) → \(b.startTime))")
                    continue
                }
                let ao = Set(a.objects.map { "\($0.path) (build-id \(short($0.buildID.lowercased())))" })
                let bo = Set(b.objects.map { "\($0.path) (build-id \(short($0.buildID.lowercased())))" })
                for o in bo.subtracting(ao).sorted() { lines.append("process \(pid) (\(b.comm)): now maps \(o)") }
                for o in ao.subtracting(bo).sorted() { lines.append("process \(pid) (\(b.comm)): no longer maps \(o)") }
                let am = Dictionary(a.patches.map { ($0.uuid, $0.state?.rawValue ?? "-") }, uniquingKeysWith: { x, _ in x })
                let bm = Dictionary(b.patches.map { ($0.uuid, $0.state?.rawValue ?? "-") }, uniquingKeysWith: { x, _ in x })
                for uuid in Set(am.keys).union(bm.keys).sorted() {
                    switch (am[uuid], bm[uuid]) {
                    case (nil, _?): lines.append("process \(pid) (\(b.comm)): patch \(short(uuid)) became live")
                    case (_?, nil): lines.append("process \(pid) (\(b.comm)): patch \(short(uuid)) is no longer live")
                    case let (x?, y?) where x != y:
                        lines.append("process \(pid) (\(b.comm)): patch \(short(uuid)) state \(x) → \(y)")
                    default: break
                    }
                }
            case (nil, nil): break
            }
        }

        let oldS = Dictionary(old.store.map { ($0.uuid, $0) }, uniquingKeysWith: { a, _ in a })
        let newS = Dictionary(new.store.map { ($0.uuid, $0) }, uniquingKeysWith: { a, _ in a })
        for uuid in Set(oldS.keys).union(newS.keys).sorted() {
            switch (oldS[uuid], newS[uuid]) {
            case let (nil, b?): lines.append("store: \(b.bundle.metadata.name) (\(short(uuid))) installed (digest \(short(b.bundle.digest)))")
            case let (a?, nil): lines.append("store: \(a.bundle.metadata.name) (\(short(uuid))) removed")
            case let (a?, b?):
                if a.bundle.digest != b.bundle.digest {
                    lines.append("store: \(b.bundle.metadata.name) (\(short(uuid))) digest \(short(a.bundle.digest)) → \(short(b.bundle.digest))")
                }
                if a.problems.isEmpty != b.problems.isEmpty {
                    lines.append("store: \(b.bundle.metadata.name) (\(short(uuid))) " + (b.problems.isEmpty ? "verifies again" : "fails verification: \(b.problems.joined(separator: "; "))"))
                }
            case (nil, nil): break
            }
        }

        for name in Set(old.packages.keys).union(new.packages.keys).sorted() {
            let a = old.packages[name] ?? [], b = new.packages[name] ?? []
            if a != b {
                lines.append("package \(name): \(a.isEmpty ? "not installed" : a.joined(separator: ", ")) → \(b.isEmpty ? "not installed" : b.joined(separator: ", "))")
            }
        }
        return lines
    }

    private static func short(_ s: String) -> String { s.count > 12 ? String(s.prefix(12)) + "…" : s }
    private static func bit(_ b: Bool) -> String { b ? "1" : "0" }
}
