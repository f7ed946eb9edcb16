import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// A valid single-patch PatchSet referencing `bundle`, for a package target.
private func patchSet(_ name: String, patch: String = "CVE-2024-0001", bundle: String = "bundles/demo-fix",
                      state: String = "activated", pin: String? = nil, hosts: String = "", extra: String = "",
                      prune: Bool = false) -> String {
    var text = """
    apiVersion: suture.dev/v1
    kind: PatchSet
    metadata:
      name: \(name)
    spec:
    \(hosts)  prune: \(prune)
      patches:
        - name: \(patch)
          bundle: \(bundle)

    """
    if let pin { text += "      sha256: \"\(pin)\"\n" }
    text += """
          state: \(state)
          target: {package: suture-demo, version: "1.0-1"}
    \(extra)
    """
    return text
}

@Suite struct ManifestLoaderTests {
    @Test func loadsAValidManifestIntoDesiredState() throws {
        let root = try ManifestFixtures.tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let bundle = try ManifestFixtures.copyDemoBundle(to: root.appendingPathComponent("bundles"))
        let digest = try ManifestFixtures.readBundle(bundle).digest
        let manifest = root.appendingPathComponent("web.yaml")
        try Data(patchSet("web", pin: digest.uppercased()).utf8).write(to: manifest)

        let config = SutureConfig(onStall: .wait, allowPartial: true)
        let result = ManifestFixtures.hostLoader("web-1", config: config).load(paths: [manifest.path])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let desired = result.desiredState
        #expect(desired.patchSets == ["web"])
        #expect(desired.prune == false)
        let patch = try #require(desired.patches.first)
        #expect(desired.patches.count == 1)
        #expect(patch.name == "CVE-2024-0001")
        #expect(patch.state == .activated)
        #expect(patch.target == .package(name: "suture-demo", version: "1.0-1"))
        #expect(patch.pin == digest)
        #expect(patch.bundle?.digest == digest)
        #expect(patch.bundle?.path == bundle.resolvingSymlinksInPath().path)
        #expect(patch.allowPartial == true)   // config default
        #expect(patch.onStall == .wait)       // config default
        #expect(patch.patchSet == "web")
        #expect(patch.location == SourceLocation(file: manifest.path, line: 8, column: 7))
        #expect(patch.stateLocation == SourceLocation(file: manifest.path, line: 11, column: 14))
        #expect(desired.manifestDigest.count == 64)
    }

    @Test func expandsDirectoriesRecursivelySortedSkippingHiddenAndOtherFiles() throws {
        let root = try ManifestFixtures.tree([
            "m/b.yaml": patchSet("b", state: "absent"),
            "m/a/z.yml": patchSet("z", patch: "P-z", state: "absent"),
            "m/a/a.yaml": patchSet("a", patch: "P-a", state: "absent"),
            "m/.git/x.yaml": "not: a manifest",
            "m/notes.txt": "ignored",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent("m").path
        let result = ManifestFixtures.lintLoader().load(paths: [dir])
        #expect(!result.hasErrors, "\(result.diagnostics)")
        #expect(result.files == [dir + "/a/a.yaml", dir + "/a/z.yml", dir + "/b.yaml"])
        #expect(result.patchSets.map(\.name) == ["a", "z", "b"])
        // The same file named twice is read once.
        let twice = ManifestFixtures.lintLoader().load(paths: [dir, dir + "/b.yaml"])
        #expect(twice.files.count == 3)
    }

    @Test func missingPathAndEmptyDirectory() throws {
        let root = try ManifestFixtures.tree(["empty/readme.txt": "x"])
        defer { try? FileManager.default.removeItem(at: root) }
        let result = ManifestFixtures.lintLoader().load(paths: [root.path + "/nope", root.path + "/empty"])
        #expect(result.diagnostics.map(\.description).sorted() == [
            "error: \(root.path)/nope: no such file or directory",
            "warning: \(root.path)/empty: no *.yaml or *.yml files found",
        ])
    }

    /// A `*.yaml` link in a manifest directory whose target is missing, or that loops, is an error
    /// naming the link (its declarations would otherwise vanish without a word); a broken link with
    /// another name is a warning.
    @Test func brokenManifestLinksAreErrorsNamingTheLink() throws {
        let root = try ManifestFixtures.tree(["m/a.yaml": patchSet("a", state: "absent")])
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent("m").path
        let manager = FileManager.default
        try manager.createSymbolicLink(atPath: dir + "/gone.yaml", withDestinationPath: "../elsewhere/gone.yaml")
        try manager.createSymbolicLink(atPath: dir + "/loop.yml", withDestinationPath: "loop.yml")
        try manager.createSymbolicLink(atPath: dir + "/notes", withDestinationPath: "missing-notes")
        let result = ManifestFixtures.lintLoader().load(paths: [dir])
        #expect(result.hasErrors)
        #expect(result.diagnostics.map(\.description).sorted() == [
            "error: \(dir)/gone.yaml: is a symbolic link to '../elsewhere/gone.yaml', which does not exist; "
                + "fix or remove the link (its declarations cannot be read)",
            "error: \(dir)/loop.yml: is a symbolic link loop (through 'loop.yml'); fix or remove the link "
                + "(its declarations cannot be read)",
            "warning: \(dir)/notes: is a symbolic link to 'missing-notes', which does not exist; skipped",
        ])
        #expect(result.files == [dir + "/a.yaml"])
        // Named directly, a dangling link says so instead of "no such file or directory".
        let direct = ManifestFixtures.lintLoader().load(paths: [dir + "/gone.yaml"])
        #expect(direct.diagnostics.map(\.message) == [
            "\(dir)/gone.yaml: is a symbolic link to '../elsewhere/gone.yaml', which does not exist; "
                + "fix or remove the link (its declarations cannot be read)",
        ])
    }

    @Test func hostSelectorMatching() {
        let web = HostSelector(hostnames: ["web-*", "api-[0-9]"], labels: ["role": "web"])
        #expect(web.matches(hostname: "web-1", labels: ["role": "web", "dc": "x"]))
        #expect(web.matches(hostname: "WEB-1.example.com", labels: ["role": "web"]))
        #expect(web.matches(hostname: "api-3", labels: ["role": "web"]))
        #expect(!web.matches(hostname: "api-10", labels: ["role": "web"]))
        #expect(!web.matches(hostname: "web-1", labels: ["role": "db"]))
        #expect(!web.matches(hostname: "web-1", labels: [:]))
        #expect(!web.matches(hostname: "db-1", labels: ["role": "web"]))
        #expect(HostSelector().matches(hostname: "anything", labels: [:]))
        #expect(HostSelector(labels: ["tier": "1"]).matches(hostname: "h", labels: ["tier": "1"]))
    }

    @Test func skipsPatchSetsForOtherHostsButStillValidatesThem() throws {
        let root = try ManifestFixtures.tree([
            "web.yaml": patchSet("web", patch: "P-web", state: "absent",
                                 hosts: "  hosts: {hostnames: [\"web-*\"], labels: {role: web}}\n"),
            "db.yaml": patchSet("db", patch: "P-db", state: "absent", hosts: "  hosts: {hostnames: [\"db-*\"]}\n"),
            "all.yaml": patchSet("all", patch: "P-all", state: "absent", prune: true),
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let web = ManifestFixtures.hostLoader("web-7", labels: ["role": "web"]).load(paths: [root.path])
        #expect(!web.hasErrors, "\(web.diagnostics)")
        #expect(web.desiredState.patchSets == ["all", "web"])
        #expect(web.desiredState.patches.map(\.name) == ["P-all", "P-web"])
        #expect(web.desiredState.prune)
        #expect(web.patchSets.count == 3)

        let db = ManifestFixtures.hostLoader("db-1").load(paths: [root.path])
        #expect(db.desiredState.patches.map(\.name) == ["P-all", "P-db"])

        // An error in a PatchSet that does not select this host is still reported.
        try Data(patchSet("db", patch: "P-db", state: "on", hosts: "  hosts: {hostnames: [\"db-*\"]}\n").utf8)
            .write(to: root.appendingPathComponent("db.yaml"))
        let again = ManifestFixtures.hostLoader("web-7", labels: ["role": "web"]).load(paths: [root.path])
        #expect(again.hasErrors)
        #expect(again.diagnostics.first { $0.severity == .error }?.location?.file == root.path + "/db.yaml")
    }

    @Test func conflictsDependOnWhetherPatchSetsCanMeet() throws {
        let root = try ManifestFixtures.tree([
            "web.yaml": patchSet("web", state: "absent", hosts: "  hosts: {hostnames: [\"web-*\"]}\n"),
            "db.yaml": patchSet("db", state: "deactivated", hosts: "  hosts: {hostnames: [\"db-*\"]}\n"),
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try ManifestFixtures.copyDemoBundle(to: root.appendingPathComponent("bundles"))
        // Lint mode: web-* and db-* cannot select one host, so different states are fine.
        #expect(!ManifestFixtures.lintLoader().load(paths: [root.path]).hasErrors)
        // Overlapping selectors conflict in lint mode.
        try Data(patchSet("db", state: "deactivated", hosts: "  hosts: {hostnames: [\"web-1\"]}\n").utf8)
            .write(to: root.appendingPathComponent("db.yaml"))
        let lint = ManifestFixtures.lintLoader().load(paths: [root.path])
        let error = try #require(lint.diagnostics.first { $0.severity == .error })
        #expect(error.message.contains("declared twice with different states"))
        #expect(error.location == SourceLocation(file: root.path + "/web.yaml", line: 11, column: 14))
        #expect(error.notes.first?.location == SourceLocation(file: root.path + "/db.yaml", line: 11, column: 14))
        // For a host that only one PatchSet selects there is no conflict.
        #expect(!ManifestFixtures.hostLoader("web-2").load(paths: [root.path]).hasErrors)
    }

    @Test func identicalDuplicatesAreAWarningAndMergeToOnePatch() throws {
        let root = try ManifestFixtures.tree([
            "a.yaml": patchSet("a", state: "absent"),
            "b.yaml": patchSet("b", state: "absent"),
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let result = ManifestFixtures.hostLoader("h").load(paths: [root.path])
        #expect(!result.hasErrors)
        #expect(result.warnings.count == 1)
        #expect(result.warnings.first?.message.contains("declared twice, identically") == true)
        #expect(result.desiredState.patches.count == 1)
        #expect(result.desiredState.patches.first?.patchSet == "a")
        #expect(result.patchCount == 1)
        #expect(result.identicalRepeats == 1)
    }

    @Test func missingPinIsAWarningOrAnErrorWithRequirePins() throws {
        let root = try ManifestFixtures.tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try ManifestFixtures.copyDemoBundle(to: root.appendingPathComponent("bundles"))
        let manifest = root.appendingPathComponent("m.yaml")
        try Data(patchSet("m").utf8).write(to: manifest)
        let relaxed = ManifestFixtures.lintLoader().load(paths: [manifest.path])
        #expect(!relaxed.hasErrors)
        #expect(relaxed.warnings.map(\.message) == [
            "patch 'CVE-2024-0001' has no sha256 pin; the applied bundle is not tied to a reviewed one"])
        let strict = ManifestFixtures.lintLoader(config: SutureConfig(requirePins: true)).load(paths: [manifest.path])
        #expect(strict.hasErrors)
        #expect(strict.diagnostics.first?.description.hasPrefix("\(manifest.path):8:7: error: ") == true)
    }

    @Test func absentPatchesMayNameAMissingBundle() throws {
        let root = try ManifestFixtures.tree(["m.yaml": patchSet("m", bundle: "gone", state: "absent")])
        defer { try? FileManager.default.removeItem(at: root) }
        let result = ManifestFixtures.lintLoader().load(paths: [root.path])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        #expect(result.desiredState.patches.first?.bundle == nil)
    }

    @Test func bundleErrorsAreNotesUnderTheBundleLine() throws {
        let root = try ManifestFixtures.tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let bundle = try ManifestFixtures.copyDemoBundle(to: root.appendingPathComponent("bundles"))
        try Data("tampered".utf8).write(to: bundle.appendingPathComponent("demo-fix.o"))
        let manifest = root.appendingPathComponent("m.yaml")
        try Data(patchSet("m").utf8).write(to: manifest)
        let result = ManifestFixtures.lintLoader().load(paths: [manifest.path])
        let error = try #require(result.diagnostics.first { $0.severity == .error })
        #expect(error.location == SourceLocation(file: manifest.path, line: 9, column: 15))
        #expect(error.message == "bundle 'bundles/demo-fix' cannot be used")
        #expect(!error.notes.isEmpty)
        #expect(error.notes.allSatisfy { $0.severity == .note })
        #expect(error.description.contains("demo-fix.o"))
    }

    @Test func collectsEveryErrorOfARunSortedByLocation() throws {
        let root = try ManifestFixtures.tree([
            "b.yaml": patchSet("b", state: "on"),
            "a.yaml": """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata: {name: a, labels: {}}
            spec:
              prune: yes
              patches:
                - {name: X, bundle: x, state: absent, target: {package: p, version: 1.10}}
            """,
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        let result = ManifestFixtures.lintLoader().load(paths: [root.path])
        let errors = result.diagnostics.filter { $0.severity == .error }.compactMap(\.location)
        #expect(errors.map { "\(($0.file as NSString).lastPathComponent):\($0.line):\($0.column)" }
                == ["a.yaml:3:21", "a.yaml:5:10", "a.yaml:7:73", "b.yaml:10:14"])
        #expect(errors == errors.sorted())
    }

    @Test func legitimateAliasesAreAccepted() throws {
        let root = try ManifestFixtures.tree(["m.yaml": """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata: {name: m}
            spec:
              patches:
                - {name: A, bundle: a, state: absent, target: &t {package: p, version: "1"}}
                - {name: B, bundle: b, state: absent, target: *t}
            """])
        defer { try? FileManager.default.removeItem(at: root) }
        let result = ManifestFixtures.lintLoader().load(paths: [root.path])
        #expect(!result.hasErrors, "\(result.diagnostics)")
        #expect(result.desiredState.patches.map(\.target) == [.package(name: "p", version: "1"),
                                                              .package(name: "p", version: "1")])
    }

    /// YAML merge keys: `<<: *defaults` and `<<: [*a, *b]`, own keys winning over merged ones, earlier
    /// merged mappings over later ones, merges of merges; labels merge too.
    @Test func mergeKeysSupplyFields() throws {
        let root = try ManifestFixtures.tree(["m.yaml": """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata: {name: m}
            spec:
              hosts:
                labels: {<<: &common {dc: fra}, role: web}
              patches:
                - &defaults
                  name: A
                  bundle: a
                  state: absent
                  onStall: wait
                  target: &t {package: p, version: "1"}
                - <<: *defaults
                  name: B
                - &policy {name: X, bundle: x, onStall: revert, state: activated, target: {path: /usr/bin/x}}
                - &deeper {<<: *policy, name: Y, bundle: c}
                - <<: [*deeper, *defaults]
                  name: C
                  target: {<<: *t, version: "2"}
            """])
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.path + "/m.yaml"
        let set = try #require(ManifestFixtures.lintLoader().load(paths: [file]).patchSets.first)
        #expect(set.hosts.labels == ["dc": "fra", "role": "web"])
        let byName = Dictionary(uniqueKeysWithValues: set.patches.map { ($0.name, $0) })
        #expect(Set(byName.keys) == ["A", "B", "X", "Y", "C"])
        let b = try #require(byName["B"])
        #expect(b.bundle == "a" && b.state == .absent && b.onStall == .wait)
        #expect(b.target == .package(name: "p", version: "1"))
        let c = try #require(byName["C"])
        #expect(c.bundle == "c" && c.state == .activated && c.onStall == .revert)   // *deeper wins over *defaults
        #expect(c.target == .package(name: "p", version: "2"))                      // own key wins
        // A merged value keeps its position: B's state is where *defaults writes it (line 11, column 14).
        #expect(b.stateLocation == SourceLocation(file: file, line: 11, column: 14))
    }

    /// An error in a merged value is reported where the value is written, with file:line:column.
    @Test func errorsInMergedValuesPointAtTheAnchoredText() throws {
        let root = try ManifestFixtures.tree(["m.yaml": """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata: {name: m}
            spec:
              patches:
                - &defaults {name: A, bundle: a, state: absent, target: {package: p, version: 1.10}}
                - <<: *defaults
                  name: B
                - <<: [*defaults, 7]
                  name: C
            """])
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.path + "/m.yaml"
        let result = ManifestFixtures.lintLoader().load(paths: [file])
        let errors = result.diagnostics.filter { $0.severity == .error }
        let version = errors.filter { $0.message.hasPrefix("expected a string for 'version'") }
        #expect(version.count == 3)   // A, and A's value again through B's and C's merges
        #expect(version.allSatisfy { $0.location == SourceLocation(file: file, line: 6, column: 83) },
                "\(version.map(\.description))")
        #expect(errors.contains { $0.description.hasPrefix("\(file):9:23: error: the merge key '<<' in "
                                                          + "spec.patches[2] takes mappings (like *defaults), found "
                                                          + "`7`, which YAML reads as an integer in its list") },
                "\(errors.map(\.description))")
    }

    @Test func boundsFileSize() throws {
        let root = try ManifestFixtures.tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let big = root.appendingPathComponent("big.yaml")
        // Valid YAML, just too large: 4 MiB + 1 byte of comment.
        try Data(("# " + String(repeating: "x", count: (4 << 20) - 2) + "\n").utf8).write(to: big)
        let result = ManifestFixtures.lintLoader().load(paths: [big.path])
        #expect(result.diagnostics.map(\.description) == [
            "\(big.path):1:1: error: file is larger than 4096 KiB; manifests this large are refused "
            + "(split it into several files)"])
        let small = ManifestFixtures.lintLoader(limits: ManifestLimits(maxFileBytes: 100))
            .load(paths: [root.appendingPathComponent("big.yaml").path])
        #expect(small.hasErrors)
    }

    @Test func boundsAliasExpansion() throws {
        let bomb = try String(contentsOf: ManifestFixtures.badManifests.appendingPathComponent("alias-bomb.yaml"),
                              encoding: .utf8)
        let root = try ManifestFixtures.tree(["bomb.yaml": bomb])
        defer { try? FileManager.default.removeItem(at: root) }
        let start = ContinuousClock.now
        let result = ManifestFixtures.lintLoader().load(paths: [root.path])
        _ = ContinuousClock.now - start
        #expect(result.diagnostics.count == 1)
        #expect(result.diagnostics.first?.message.contains("alias bomb") == true)
        // A lower limit trips earlier, on a smaller alias.
        let strict = ManifestFixtures.lintLoader(limits: ManifestLimits(maxAliasedNodes: 5)).load(paths: [root.path])
        #expect(strict.diagnostics.first?.location?.line == 5)
    }

    @Test func digestChangesWithContentAndIsStable() throws {
        let root = try ManifestFixtures.tree(["m.yaml": patchSet("m", state: "absent")])
        defer { try? FileManager.default.removeItem(at: root) }
        let one = ManifestFixtures.lintLoader().load(paths: [root.path]).desiredState.manifestDigest
        let two = ManifestFixtures.lintLoader().load(paths: [root.path]).desiredState.manifestDigest
        #expect(one == two)
        try Data(patchSet("m", state: "absent", extra: "# edited\n").utf8).write(to: root.appendingPathComponent("m.yaml"))
        #expect(ManifestFixtures.lintLoader().load(paths: [root.path]).desiredState.manifestDigest != one)
    }

    @Test func sourceLinesAndCaretsAreRendered() throws {
        let root = try ManifestFixtures.tree(["m.yaml": patchSet("m", state: "yes")])
        defer { try? FileManager.default.removeItem(at: root) }
        let path = root.path + "/m.yaml"
        let result = ManifestFixtures.lintLoader().load(paths: [path])
        let error = try #require(result.diagnostics.first { $0.severity == .error })
        #expect(error.description == """
            \(path):10:14: error: state `yes` is read by YAML 1.1 as a boolean, not a word; write one of \
            accepted, activated, deactivated, absent (quote a word YAML could misread)
                  state: yes
                         ^
            """)
    }

    @Test func suggestionsUseEditDistance() throws {
        let root = try ManifestFixtures.tree(["m.yaml": """
            apiversion: suture.dev/v1
            kind: PatchSet
            metdata: {name: m}
            spec: {patches: [], prun: true, hosts: {hostname: [a]}}
            """])
        defer { try? FileManager.default.removeItem(at: root) }
        let messages = ManifestFixtures.lintLoader().load(paths: [root.path]).diagnostics.map(\.message)
        #expect(messages == [
            "unknown key 'apiversion' in the PatchSet document; did you mean 'apiVersion'?",
            "unknown key 'metdata' in the PatchSet document; did you mean 'metadata'?",
            "unknown key 'prun' in 'spec'; did you mean 'prune'?",
            "unknown key 'hostname' in 'spec.hosts'; did you mean 'hostnames'?",
        ])
    }

    /// Not a timed assertion: prints how long loading 100 manifests takes, for the report.
    @Test func loadsAHundredManifests() throws {
        var files: [String: String] = [:]
        for i in 0..<100 {
            files[String(format: "m/%03d.yaml", i)] = patchSet("set-\(i)", patch: "P-\(i)", state: "absent",
                hosts: "  hosts: {hostnames: [\"web-*\", \"api-*\"], labels: {role: web}}\n")
        }
        let root = try ManifestFixtures.tree(files)
        defer { try? FileManager.default.removeItem(at: root) }
        let loader = ManifestFixtures.hostLoader("web-1", labels: ["role": "web"])
        _ = loader.load(paths: [root.path])
        let clock = ContinuousClock()
        var best = Duration.seconds(1000)
        for _ in 0..<5 {
            let elapsed = clock.measure {
                let result = loader.load(paths: [root.path])
                precondition(result.desiredState.patches.count == 100)
            }
            best = min(best, elapsed)
        }
        print("ManifestLoader: 100 manifests loaded in \(best) (best of 5)")
    }
}

/// YAML 1.1 typing of unquoted versions: what is refused and what is a plain string.
@Suite struct YAMLTrapTests {
    static let refused: [(String, String)] = [
        ("1.10", "a number (1.1)"), ("7.0", "a number (7)"), ("2", "an integer"), ("010", "an integer"),
        ("0x1F", "an integer"), ("1_000", "an integer"), ("1:30", "an integer"), ("1e3", "a number"),
        (".5", "a number"), (".inf", "a number"), ("-.inf", "a number"), (".NaN", "a number"),
        ("2024-01-01", "a timestamp"), ("yes", "a boolean"), ("off", "a boolean"), ("~", "nothing (null)"),
    ]
    static let accepted = ["3.0.15-1~deb12u1", "1.0-1", "1.2.3", "7.0.0", "2:1.2-3", "v1.10", "1.10a",
                           "\"1.10\"", "'7.0'", "!!str 1.10", ".hidden", "../x", "1-2"]

    private func load(version: String) throws -> ManifestLoadResult {
        let root = try ManifestFixtures.tree(["m.yaml": """
            apiVersion: suture.dev/v1
            kind: PatchSet
            metadata: {name: m}
            spec:
              patches:
                - {name: P, bundle: b, state: absent, target: {package: p, version: \(version)}}
            """])
        defer { try? FileManager.default.removeItem(at: root) }
        return ManifestFixtures.lintLoader().load(paths: [root.path])
    }

    @Test(arguments: refused) func unquotedNonStringsAreRefused(_ version: String, _ reading: String) throws {
        let result = try load(version: version)
        let error = try #require(result.diagnostics.first { $0.severity == .error })
        #expect(error.message.hasPrefix("expected a string for 'version', found"), "\(error.message)")
        #expect(error.message.contains(reading), "\(error.message)")
        #expect(error.location?.line == 6)
    }

    @Test(arguments: accepted) func stringsAreAccepted(_ version: String) throws {
        let result = try load(version: version)
        #expect(!result.hasErrors, "\(result.diagnostics)")
    }
}
