// BuildBenchmark [SOURCES]: `suture build` for a one-function fix vs one plain build of the same tree, in
// one run. The tree is cJSON 1.7.15 from `scripts/fetch-e2e-sources` (SOURCES defaults to
// .build/e2e-sources, or $SUTURE_E2E_SOURCES). Two one-function fixes of cJSON.c are generated here:
// A (a NULL check in cJSON_SetValuestring) and B (a NULL check in cJSON_InsertItemInArray).
//
// Measured, wall clock, on whatever else the machine is doing:
//   plain     the tree built once with its own build command, no wrapper (the deployed build = the target)
//   unit      `touch cJSON.c` + the build command again in that tree: one unit recompiled and relinked
//   first     BuildPipeline for fix A with an empty cache (original build + patched build + diff + link + verify)
//   second    BuildPipeline for fix B on the same tree (original build cached)
// Goals (issue 10): first <= 1.3 x plain + 2 x unit; second <= 2 x unit + link (unit includes the link).
import Foundation
import SutureBuild

func sh(_ command: String, in directory: URL) -> Double {
    let start = Date()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    p.currentDirectoryURL = directory
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try! p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fatalError("`\(command)` failed in \(directory.path)") }
    return Date().timeIntervalSince(start)
}

let arguments = CommandLine.arguments.dropFirst()
let sources = URL(fileURLWithPath: arguments.first ?? ProcessInfo.processInfo.environment["SUTURE_E2E_SOURCES"]
                  ?? FileManager.default.currentDirectoryPath + "/.build/e2e-sources")
let upstream = sources.appendingPathComponent("cjson/cJSON-1.7.15")
guard FileManager.default.fileExists(atPath: upstream.appendingPathComponent("cJSON.c").path) else {
    FileHandle.standardError.write(Data("no cJSON tree at \(upstream.path): run scripts/fetch-e2e-sources\n".utf8))
    exit(2)
}
let command = "cmake -S . -B build -DENABLE_CJSON_TEST=Off -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build"
let work = FileManager.default.temporaryDirectory.appendingPathComponent("suture-build-benchmark-\(getpid())")
defer { try? FileManager.default.removeItem(at: work) }
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)

// The two fixes, as unified diffs of cJSON.c.
let original = try String(contentsOf: upstream.appendingPathComponent("cJSON.c"), encoding: .utf8)
func makePatch(_ name: String, _ old: String, _ new: String) throws -> String {
    guard original.contains(old) else { fatalError("fix \(name): \(old) not in cJSON.c") }
    let a = work.appendingPathComponent("\(name)-a"), b = work.appendingPathComponent("\(name)-b")
    try FileManager.default.createDirectory(at: a, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
    try original.write(to: a.appendingPathComponent("cJSON.c"), atomically: true, encoding: .utf8)
    try original.replacingOccurrences(of: old, with: new).write(to: b.appendingPathComponent("cJSON.c"), atomically: true, encoding: .utf8)
    let out = work.appendingPathComponent("\(name).patch")
    _ = try? sh("diff -u --label a/cJSON.c --label b/cJSON.c \(name)-a/cJSON.c \(name)-b/cJSON.c > \(out.path); test $? -eq 1", in: work)
    return out.path
}
let fixA = try makePatch("A", "    if (strlen(valuestring) <= strlen(object->valuestring))",
                         "    if (valuestring == NULL)\n    {\n        return NULL;\n    }\n    if (strlen(valuestring) <= strlen(object->valuestring))")
let fixB = try makePatch("B", "    if (which < 0)\n", "    if (which < 0 || newitem == NULL)\n")

// plain and unit.
let plainTree = work.appendingPathComponent("plain")
_ = sh("cp -a '\(upstream.path)' '\(plainTree.path)'", in: work)
let plain = sh(command, in: plainTree)
let unit = sh("touch cJSON.c && \(command)", in: plainTree)
let target = plainTree.appendingPathComponent("build/libcjson.so.1.7.15").path

func build(_ patch: String, _ name: String) -> (Double, BuildReport) {
    let options = BuildOptions(source: upstream.path, patches: [patch], buildCommand: command, targets: [target],
                               name: name, version: "1", output: work.appendingPathComponent("bundle-\(name)").path,
                               workDirectory: work.appendingPathComponent("work-\(name)").path,
                               cacheDirectory: work.appendingPathComponent("cache").path)
    let start = Date()
    let report = BuildPipeline(options: options).run()
    let seconds = Date().timeIntervalSince(start)
    if let error = report.error { fatalError("suture build \(name): \(error)") }
    return (seconds, report)
}
let (first, firstReport) = build(fixA, "fix-a")
let (second, secondReport) = build(fixB, "fix-b")

func phases(_ r: BuildReport) -> String {
    r.phases.map { String(format: "%@ %.2f", $0.name, $0.seconds) }.joined(separator: ", ")
}
print("cJSON 1.7.15, one-function fixes of cJSON.c, \(ProcessInfo.processInfo.activeProcessorCount) CPUs")
print(String(format: "plain build          %6.2f s", plain))
print(String(format: "unit rebuild + link  %6.2f s", unit))
print(String(format: "first patch (A)      %6.2f s  = %.2f x plain; goal <= 1.3 x plain + 2 x unit = %.2f s  [%@]",
             first, first / plain, 1.3 * plain + 2 * unit, phases(firstReport)))
print(String(format: "second patch (B)     %6.2f s  = %.2f x unit; goal <= 2 x unit = %.2f s  [%@]",
             second, second / unit, 2 * unit, phases(secondReport)))
print("replaced: A \(firstReport.targets.flatMap(\.replaced).map(\.symbol)), B \(secondReport.targets.flatMap(\.replaced).map(\.symbol))")
