// Manifest loading: how long `ManifestLoader.load` takes for N PatchSet files (default 100, 5 patches
// each, host selectors, quoted versions, an alias), parse + decode + select + merge. Bundle reading is
// left out (every patch is `state: absent` with no bundle on disk): it is measured by the bundle
// benchmarks. Run: `swift run -c release --package-path Benchmarks ManifestBenchmark [FILES] [ROUNDS] [--check]`.
// Threshold (docs/performance.md), a ratio measured in the same run: the loader's median time over the
// median time of `Yams.load` of the same files (parsing alone) is at most 3; `--check` exits 1 when not.
import Foundation
import SutureCore
import Yams

let check = CommandLine.arguments.contains("--check")
let arguments = [CommandLine.arguments[0]] + CommandLine.arguments.dropFirst().filter { $0 != "--check" }
let fileCount = arguments.count > 1 ? Int(arguments[1]) ?? 100 : 100
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 20 : 20

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("suture-manifest-bench-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
var bytes = 0
for i in 0..<fileCount {
    var text = """
    # PatchSet \(i): generated for the benchmark.
    apiVersion: suture.dev/v1
    kind: PatchSet
    metadata:
      name: set-\(i)
    spec:
      hosts:
        hostnames: ["web-*", "api-[0-9]*"]
        labels: {role: web, dc: fra1}
      prune: false
      patches:

    """
    for p in 0..<5 {
        text += """
            - name: CVE-2026-\(i * 10 + p)
              bundle: ../bundles/CVE-2026-\(i * 10 + p)
              sha256: "\(String(repeating: "ab", count: 32))"
              state: absent
              target: \(p == 0 ? "&t " : "*t")\(p == 0 ? "{package: libssl3, version: \"3.0.15-1~deb12u1\"}" : "")
              allowPartial: false

        """
    }
    bytes += text.utf8.count
    try Data(text.utf8).write(to: directory.appendingPathComponent(String(format: "%04d.yaml", i)))
}

let config = SutureConfig(labels: ["role": "web", "dc": "fra1"])
let loader = ManifestLoader(config: config, hostname: "web-12", readBundle: { url throws(DiagnosticError) in
    throw DiagnosticError(Diagnostic(.error, "no bundles in this benchmark: \(url.path)"))
})
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
var samples: [Double] = []
let cpuStart = cpuSeconds()
for _ in 0..<rounds {
    let start = ContinuousClock.now
    let result = loader.load(paths: [directory.path])
    let elapsed = ContinuousClock.now - start
    precondition(!result.hasErrors && result.desiredState.patches.count == fileCount * 5, "\(result.diagnostics)")
    samples.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
}
let cpuPerRound = (cpuSeconds() - cpuStart) / Double(rounds)
samples.sort()
func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }
print("ManifestBenchmark: \(fileCount) files (\(bytes / 1024) KiB, \(fileCount * 5) patches), \(rounds) rounds: "
      + "min \(ms(samples[0])), median \(ms(samples[samples.count / 2])), max \(ms(samples[samples.count - 1])); "
      + "per file \(String(format: "%.1f µs", samples[samples.count / 2] / Double(fileCount) * 1e6)) (median); "
      + "CPU time per round \(ms(cpuPerRound)) (user+sys, unaffected by other load)")

// Baseline in the same run: Yams parsing the same files (read + parse, no checks, no merge).
let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
var baseline: [Double] = []
for _ in 0..<rounds {
    let start = ContinuousClock.now
    for name in files {
        let text = try String(contentsOfFile: directory.appendingPathComponent(name).path, encoding: .utf8)
        _ = try Yams.compose(yaml: text)
    }
    let elapsed = ContinuousClock.now - start
    baseline.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
}
baseline.sort()
let ratio = samples[samples.count / 2] / baseline[baseline.count / 2]
print("Yams.compose of the same files: median \(ms(baseline[baseline.count / 2]))")
print("THRESHOLD loader/yams \(String(format: "%.2f", ratio)) (<= 3.00) \(ratio <= 3 ? "OK" : "OVER")")
if check && ratio > 3 { exit(1) }
