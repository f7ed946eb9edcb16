import Foundation
import SutureTestSupport
import Testing

/// cJSON 1.7.15 (upstream tree) and its upstream NULL-check fixes (CVE-2023-50472, CVE-2024-31755):
/// `suture build` from the tree and the two patches, then `suture apply` on a running service that uses
/// the vulnerable library, flipped under load. Needs `scripts/fetch-e2e-sources` (CI runs it) and cmake.
@Suite(.serialized, .enabled(if: EndToEnd.available("cjson/patches/0002-add-null-check-to-cjson-setvaluestring.patch"),
                            "run scripts/fetch-e2e-sources and install cmake"))
struct CJSONEndToEndTests {
    static let buildCommand = "cmake -S . -B build -DENABLE_CJSON_TEST=Off -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build"

    @Test func buildFixesTheRunningServiceAndDeactivationBringsTheBugBack() throws {
        let work = try TestSupport.temporaryDirectory("suture-e2e-cjson")
        defer { try? FileManager.default.removeItem(at: work) }
        let upstream = EndToEnd.sources.appendingPathComponent("cjson/cJSON-1.7.15")
        let patches = ["0001-add-null-checkings.patch", "0002-add-null-check-to-cjson-setvaluestring.patch"]
            .map { EndToEnd.sources.appendingPathComponent("cjson/patches/\($0)").path }

        // The vulnerable library as deployed: the plain tree built with its own build system, no suture.
        let deployed = work.appendingPathComponent("deployed")
        try EndToEnd.sh("cp -a '\(upstream.path)' '\(deployed.path)'", in: work)
        try EndToEnd.sh(Self.buildCommand, in: deployed)
        let library = deployed.appendingPathComponent("build/libcjson.so.1.7.15").path
        let service = work.appendingPathComponent("cjson-service")
        try CBuild.check("/usr/bin/gcc", ["-O2", "-pthread", "-I", deployed.path,
                                          TestSupport.fixtures.appendingPathComponent("e2e/cjson-service.c").path,
                                          "-L", deployed.appendingPathComponent("build").path, "-lcjson",
                                          "-Wl,-rpath,\(deployed.appendingPathComponent("build").path)", "-o", service.path])
        let server = try LineService(binary: service, probe: "STATS")
        defer { server.stop() }
        let pid = server.pid
        // The bug, through an outside reproducer: cJSON_SetValuestring(item, NULL) faults.
        #expect(try server.ask("SETNULL") == "CRASH")

        // suture build from the tree and the upstream fixes.
        let bundle = work.appendingPathComponent("bundles/cjson-setvaluestring")
        let built = try EndToEnd.run(["build", "--source", upstream.path, "--patch", patches[0], "--patch", patches[1],
                                      "--build-command", Self.buildCommand, "--target", library,
                                      "--name", "cjson-setvaluestring", "--version", "1", "--output", bundle.path,
                                      "--cache-dir", work.appendingPathComponent("cache").path, "--json"])
        #expect(built.status == 0, "\(built.stderr)\n\(built.stdout)")
        let report = try JSONSerialization.jsonObject(with: Data(built.stdout.utf8)) as? [String: Any] ?? [:]
        let changed = (report["changed_units"] as? [[String: Any]] ?? []).compactMap { $0["source"] as? String }
        #expect(changed == ["cJSON.c"])
        let target = (report["targets"] as? [[String: Any]])?.first ?? [:]
        let replaced = Set((target["replaced"] as? [[String: Any]] ?? []).compactMap { $0["symbol"] as? String })
        #expect(replaced == ["cJSON_SetValuestring", "cJSON_InsertItemInArray"])
        #expect((target["symbols"] as? [String: Any])?["source"] as? String == "target")
        let phases = (report["phases"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(phases == ["prepare", "original build", "patched build", "diff", "link", "verify"])
        for phase in ["original build", "patched build", "diff", "link", "verify"] {
            #expect(built.stderr.contains("suture build: \(phase): "), "\(built.stderr)")
        }
        let sha256 = try #require((report["bundle"] as? [String: Any])?["sha256"] as? String)
        let verify = try EndToEnd.run(["bundle", "verify", bundle.path])
        #expect(verify.stdout.contains("digest: \(sha256)"), "\(verify.stdout)\(verify.stderr)")
        #expect(FileManager.default.fileExists(atPath: bundle.appendingPathComponent(patches[1].split(separator: "/").last.map(String.init)!).path))

        // A manifest pinned to the printed digest, applied: fixed in the same process.
        let host = try PrivateRoot(work)
        func apply(_ state: String) throws {
            try host.manifest(name: "cjson-setvaluestring", bundle: bundle.path, sha256: sha256, state: state, target: library)
            let r = try host.apply()
            #expect(r.status == 0, "\(state): \(r.stdout)\n\(r.stderr)")
            #expect(r.stdout.contains("pid \(pid)"), "\(state): \(r.stdout)")
        }
        try apply("activated")
        #expect(try server.ask("SETNULL") == "NULL")
        #expect(server.pid == pid && server.isRunning)

        // Deactivated: the bug is back; flip a few times under the service's own load (4 threads calling the
        // patched functions in a loop and checking every result).
        let before = try server.ask("STATS")
        for round in 0..<3 {
            try apply("deactivated")
            #expect(try server.ask("SETNULL") == "CRASH", "round \(round)")
            try apply("activated")
            #expect(try server.ask("SETNULL") == "NULL", "round \(round)")
        }
        try apply("deactivated")
        #expect(try server.ask("SETNULL") == "CRASH")
        let after = try server.ask("STATS")
        #expect(server.isRunning && server.pid == pid)
        #expect(after.contains("errors=0 "), "\(after)")
        func loops(_ stats: String) -> Int { Int(stats.split(separator: " ").first { $0.hasPrefix("loops=") }?.dropFirst(6) ?? "") ?? -1 }
        #expect(loops(after) > loops(before), "\(before) -> \(after)")
    }
}
