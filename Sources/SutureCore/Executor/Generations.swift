import Foundation

/// The git revision of the manifests when they live in a git work tree.
public struct GitRevision: Codable, Sendable, Hashable {
    /// The work tree's top directory.
    public var workTree: String
    /// `HEAD` commit (40 hex digits).
    public var commit: String
    /// True when the manifest files had uncommitted changes.
    public var dirty: Bool

    /// Memberwise initializer.
    public init(workTree: String, commit: String, dirty: Bool) {
        self.workTree = workTree
        self.commit = commit
        self.dirty = dirty
    }

    /// Asks `git` about the directory holding `path` (a manifest file or directory).
    /// - Returns: nil when `git` is missing or the path is not in a work tree.
    public static func of(path: String) -> GitRevision? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
        let dir = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
        guard let top = git(["-C", dir, "rev-parse", "--show-toplevel"]),
              let head = git(["-C", dir, "rev-parse", "HEAD"]) else { return nil }
        let status = git(["-C", dir, "status", "--porcelain", "--", "."]) ?? ""
        return GitRevision(workTree: top, commit: head, dirty: !status.isEmpty)
    }

    private static func git(_ args: [String]) -> String? {
        guard let run = try? ChildProcess.run("/usr/bin/env", ["git"] + args, timeout: .seconds(10)),
              run.succeeded else { return nil }
        return run.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The record of one successful apply (`<root>/var/lib/suture/generations/N.json`), for `history` and
/// `rollback` (NixOS generations, Argo CD `app rollback`).
public struct Generation: Codable, Sendable, Hashable {
    /// JSON format version (1).
    public var formatVersion: Int = 1
    /// The generation number, from 1.
    public var number: Int
    /// When the apply finished (ISO 8601).
    public var time: String
    /// The command that produced it (`suture apply examples/manifests`, `suture rollback 2`).
    public var command: String
    /// `DesiredState.manifestDigest`.
    public var manifestDigest: String
    /// The manifest paths given to apply.
    public var manifestPaths: [String]
    /// The git revision of the manifests, when they are in a git work tree.
    public var git: GitRevision?
    /// The desired state that was applied (bundles with their digests), so rollback can plan back to it.
    public var desired: DesiredState
    /// The live state right after the apply.
    public var live: LiveState
    /// Number of actions performed.
    public var changes: Int
    /// User patches accepted as Partial in that run.
    public var partial: [String]

    /// Memberwise initializer.
    public init(number: Int, time: String = isoTimestamp(Date()), command: String, manifestDigest: String,
                manifestPaths: [String], git: GitRevision?, desired: DesiredState, live: LiveState, changes: Int,
                partial: [String] = []) {
        self.number = number
        self.time = time
        self.command = command
        self.manifestDigest = manifestDigest
        self.manifestPaths = manifestPaths
        self.git = git
        self.desired = desired
        self.live = live
        self.changes = changes
        self.partial = partial
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", number, time, command, manifestDigest = "manifest_digest",
             manifestPaths = "manifest_paths", git, desired, live, changes, partial
    }

    /// Live patches in the snapshot: `name STATE` lines for `history`, e.g. `demo-fix activated (2 processes)`.
    public var livePatchSummary: [String] {
        var out: [String] = []
        let names = Dictionary(live.store.map { ($0.uuid, $0.bundle.metadata.name) }, uniquingKeysWith: { a, _ in a })
        var counts: [String: Int] = [:]
        for p in live.processes { for m in p.patches { counts[m.uuid, default: 0] += 1 } }
        for (uuid, n) in counts.sorted(by: { $0.key < $1.key }) {
            // A region of a patch Suture's store does not know was live too: say so, do not pass it off.
            out.append(names[uuid].map { "\($0) live in \(n) process(es)" } ?? "\(uuid) live in \(n) process(es) (foreign: not in the store)")
        }
        let storeModules = Set(live.store.flatMap { $0.bundle.metadata.entities.compactMap(\.moduleName) })
        for k in live.kernel.patches where k.enabled {
            out.append(storeModules.contains(k.name) ? "\(k.name) (kernel) enabled" : "\(k.name) (kernel) enabled (foreign: not in the store)")
        }
        return out
    }
}

/// Errors reading or writing generations.
public struct GenerationError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public var message: String
    /// The message.
    public var description: String { message }
}

/// `<root>/var/lib/suture/generations/`: numbered JSON files, written atomically (temporary file, fsync,
/// rename).
public struct GenerationStore: Sendable {
    /// The state layout.
    public var paths: StatePaths

    /// Creates the store under `paths`.
    public init(paths: StatePaths) { self.paths = paths }

    /// Generation numbers present, ascending.
    public func numbers() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: paths.generations)) ?? []
        return names.compactMap { name in
            name.hasSuffix(".json") ? Int(name.dropLast(5)) : nil
        }.sorted()
    }

    /// Reads generation `number`.
    /// - Throws: `GenerationError` when it does not exist or does not parse.
    public func load(_ number: Int) throws(GenerationError) -> Generation {
        let path = paths.generations + "/\(number).json"
        guard let data = FileManager.default.contents(atPath: path) else {
            let known = numbers()
            throw GenerationError(message: "generation \(number) does not exist (known: "
                                  + (known.isEmpty ? "none" : known.map(String.init).joined(separator: ", ")) + ")")
        }
        do { return try JSONDecoder().decode(Generation.self, from: data) } catch {
            throw GenerationError(message: "\(path): cannot read generation: \(error)")
        }
    }

    /// Every generation, ascending (unreadable files are skipped).
    public func all() -> [Generation] { numbers().compactMap { try? load($0) } }

    /// Writes `generation` with the next number.
    /// - Returns: the number written.
    /// - Throws: `GenerationError`.
    public func record(_ generation: Generation) throws(GenerationError) -> Int {
        var g = generation
        g.number = (numbers().last ?? 0) + 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try makeDirectories(paths.generations)
            let data = try encoder.encode(g)
            let final = paths.generations + "/\(g.number).json"
            do {
                try writeFileDurably(data, to: final)
            } catch {
                throw GenerationError(message: "\(error.path): \(error.message)")
            }
            return g.number
        } catch let e as GenerationError {
            throw e
        } catch {
            throw GenerationError(message: "cannot write generation: \(error)")
        }
    }
}

/// Turns a generation back into a desired state for `suture rollback N`.
public enum RollbackPlanning {
    /// The desired state that brings the host back to `generation`: its declared patches with their
    /// recorded states, bundles taken from the store when the same digest is installed (else the recorded
    /// bundle path, which must still hold that digest), and every patch installed now that the generation
    /// did not declare set to `absent`.
    /// - Parameters:
    ///   - generation: the target generation.
    ///   - store: the bundles installed now.
    ///   - bundleDigest: re-reads a bundle directory and returns its digest (nil when missing or invalid).
    /// - Throws: `GenerationError` naming every patch whose bundle is no longer available.
    public static func desiredState(for generation: Generation, store: [InstalledBundle],
                                    bundleDigest: (String) -> String?) throws(GenerationError) -> DesiredState {
        var patches: [DesiredPatch] = []
        var missing: [String] = []
        let installed = Dictionary(store.map { ($0.uuid, $0) }, uniquingKeysWith: { a, _ in a })
        for var p in generation.desired.patches {
            if let b = p.bundle {
                if let i = installed[b.metadata.uuid], i.bundle.digest == b.digest, i.problems.isEmpty {
                    p.bundle = i.bundle
                } else if p.state != .absent && bundleDigest(b.path) != b.digest {
                    missing.append("\(p.name): bundle \(b.path) (sha256 \(b.digest.prefix(12))…) is neither in the "
                                   + "store nor at its recorded path with the same digest")
                }
            }
            patches.append(p)
        }
        let declared = Set(generation.desired.patches.compactMap(\.uuid))
        for i in store where !declared.contains(i.uuid) {
            patches.append(DesiredPatch(name: i.bundle.metadata.name, state: .absent,
                                        target: .path(i.bundle.metadata.entities.first?.targetPath ?? ""),
                                        bundle: i.bundle, patchSet: "rollback",
                                        location: SourceLocation(file: "generation \(generation.number)", line: 1,
                                                                 column: 1)))
        }
        if !missing.isEmpty {
            throw GenerationError(message: "cannot roll back to generation \(generation.number):\n  "
                                  + missing.joined(separator: "\n  "))
        }
        patches.sort { ($0.name, $0.location) < ($1.name, $1.location) }
        return DesiredState(patches: patches, prune: generation.desired.prune,
                            patchSets: generation.desired.patchSets, manifestDigest: generation.manifestDigest)
    }

    /// Reasons a rollback plan cannot be executed: actions that touch a kernel patch whose transition was
    /// forced (the kernel cannot safely undo it; reboot required), per the plan's `forced` drift.
    public static func refusals(_ plan: Plan) -> [String] {
        let forced = Set(plan.drift.filter { $0.kind == .forced }.map(\.patch))
        return plan.actions.filter { forced.contains($0.patch) }.map {
            "\(describe($0)): the transition of \($0.patch) was forced; a forced livepatch cannot be undone safely "
                + "(reboot required)"
        }
    }
}
