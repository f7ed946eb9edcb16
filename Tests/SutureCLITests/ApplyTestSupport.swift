import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// Runs the built `suture` binary with an environment, capturing output; can also start it in the
/// background (for kill -9 and lock tests).
struct Suture {
    var status: Int32
    var stdout: String
    var stderr: String

    static var binary: String { TestSupport.packageRoot.appendingPathComponent(".build/debug/suture").path }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Suture {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["SUTURE_LOG"] = "stderr"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("suture-out-\(UUID().uuidString)")
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("suture-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outFile); try? FileManager.default.removeItem(at: errFile) }
        process.standardOutput = try FileHandle(forWritingTo: outFile)
        process.standardError = try FileHandle(forWritingTo: errFile)
        try process.run()
        process.waitUntilExit()
        return Suture(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outFile, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errFile, encoding: .utf8)) ?? "")
    }

    /// Starts suture in the background; output goes to /dev/null.
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["SUTURE_LOG"] = "stderr"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }
}

/// Waits (polling every 20 ms, up to `seconds`) for `condition`.
func waitUntil(_ seconds: Double = 60, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// `/proc/PID/stat` state letter (`T` = stopped).
func processState(_ pid: Int32) -> Character? {
    ProcStat.read(pid: pid)?.state
}

/// A private root for one test: `proc` and `sys` link to the real ones (so the live-state readers see
/// real processes), everything Suture writes (store, journal, generations, lock, local manifest) stays
/// inside; bundles and manifests are created under `work/`.
struct TestHost {
    let root: URL
    var paths: StatePaths { StatePaths(root: root.path) }
    var work: URL { root.appendingPathComponent("work") }

    init() throws {
        root = try TestSupport.temporaryDirectory("suture-cli")
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("proc").path, withDestinationPath: "/proc")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("sys").path, withDestinationPath: "/sys")
        try fm.createDirectory(at: work.appendingPathComponent("bundles"), withIntermediateDirectories: true)
        try fm.createDirectory(at: work.appendingPathComponent("manifests"), withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(at: root) }

    /// Writes a user-patch bundle targeting a binary that does not run (so plans only install/remove).
    @discardableResult
    func bundle(_ name: String, uuid: String) throws -> ResolvedBundle {
        let payload = work.appendingPathComponent("\(name).o")
        try Data("payload of \(name)\n".utf8).write(to: payload)
        let meta = BundleMetadata(name: name, version: "1", release: "1", uuid: uuid, kind: .user,
                                  description: "test patch \(name)",
                                  target: BundleTarget(package: "suture-test", version: "1.0", arch: "x86_64"),
                                  entities: [BundleEntity(targetPath: "/nonexistent/suture-test/\(name)",
                                                          targetBuildID: "0123456789abcdef0123456789abcdef01234567",
                                                          payload: "\(name).o", payloadSHA256: "")],
                                  patches: [])
        let dir = work.appendingPathComponent("bundles/\(name)")
        try? FileManager.default.removeItem(at: dir)
        return try BundleWriter.write(meta, payloads: ["\(name).o": payload], to: dir)
    }

    /// Writes `work/manifests/<file>` declaring `patches` (name → state), replacing the directory's files.
    func manifest(_ patches: [(String, DesiredPatchState)], file: String = "test.yaml") throws {
        let dir = work.appendingPathComponent("manifests")
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
            try FileManager.default.removeItem(at: dir.appendingPathComponent(f))
        }
        var text = "apiVersion: suture.dev/v1\nkind: PatchSet\nmetadata:\n  name: test\nspec:\n  patches:\n"
        if patches.isEmpty { text = "apiVersion: suture.dev/v1\nkind: PatchSet\nmetadata:\n  name: test\nspec:\n  patches: []\n" }
        for (name, state) in patches {
            text += "    - name: \(name)\n      bundle: ../bundles/\(name)\n      state: \(state.rawValue)\n"
            text += "      target:\n        path: /nonexistent/suture-test/\(name)\n"
        }
        try text.write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8)
    }

    var manifests: String { work.appendingPathComponent("manifests").path }

    /// `suture ARGS --root ROOT`.
    func suture(_ args: [String], environment: [String: String] = [:]) throws -> Suture {
        try Suture.run(args + ["--root", root.path], environment: environment)
    }

    var storeUUIDs: Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: paths.store))?.filter { !$0.hasPrefix(".") } ?? [])
    }
}
