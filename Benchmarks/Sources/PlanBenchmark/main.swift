// PlanBenchmark: the full `suture plan` path (manifest load + store + live read + plan + render) with
// 1,000 live processes and 50 declared patches, against `cat /proc/[0-9]*/maps > /dev/null` over the same
// processes in the same run; plus peak RSS (getrusage).
//
// Run: swift run -c release --package-path Benchmarks PlanBenchmark [--processes N] [--patches N] [--runs N]
// Goals (reconciler-core issue): plan time ≤ 1.5 × cat time; peak RSS ≤ 40 MiB.
//
// Set-up: gcc builds 5 tiny target programs (distinct build-ids) that block in pause(); the benchmark
// starts N processes of them (round robin), writes 50 user bundles (10 per target, one distinct function
// each) into a temporary directory with BundleWriter, installs half of them in a temporary store, and
// writes one manifest declaring all 50 `activated` by target path. The temporary root links `proc`, `sys`
// and `var/lib/dpkg` to this host's, so the plan reads the live processes and package database through the
// same library entry points as `suture plan --root` (`SutureHost.system` + `PlanSession`). Every process is
// killed at the end.
import Foundation
import SutureCore
import SuturePatching


struct Options {
    var processes = 1000
    var patches = 50
    var runs = 7
    /// Exit 1 when a recorded threshold is exceeded (docs/performance.md).
    var check = false
    init() {
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            if a == "--check" { check = true; continue }
            guard let v = args.popFirst().flatMap(Int.init) else { fatalError("usage: PlanBenchmark [--processes N] [--patches N] [--runs N] [--check]") }
            switch a {
            case "--processes": processes = v
            case "--patches": patches = v
            case "--runs": runs = v
            default: fatalError("unknown option \(a)")
            }
        }
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // ru_maxrss is in KiB on Linux
}

func currentRSSMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return Double(line.split(separator: " ")[1]).map { $0 / 1024 } ?? 0
}

@discardableResult
func run(_ argv: [String], quiet: Bool = false) -> Int32 {
    var pid: pid_t = 0
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    if quiet { posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) }
    let cargs = argv.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) }; posix_spawn_file_actions_destroy(&actions) }
    guard posix_spawnp(&pid, argv[0], &actions, nil, cargs, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}

func spawn(_ path: String) -> pid_t {
    var pid: pid_t = 0
    let cargs = [strdup(path), nil]
    defer { free(cargs[0]) }
    guard posix_spawn(&pid, path, nil, nil, cargs, environ) == 0 else { fatalError("cannot start \(path)") }
    return pid
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func buildID(of path: String) -> String {
    // readelf -n prints "Build ID: <hex>"; the benchmark does not depend on SutureELF.
    let pipe = Pipe()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/readelf")
    p.arguments = ["-n", path]
    p.standardOutput = pipe
    try! p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard let line = out.split(separator: "\n").first(where: { $0.contains("Build ID:") }) else { fatalError("no build-id in \(path)") }
    return String(line.split(separator: " ").last!)
}

/// One `suture plan` of `manifestPath` under `root`, through the library entry points the CLI uses.
func planOnce(manifestPath: String, root: String) throws -> (Plan, LiveState, Int) {
    let session = PlanSession(host: try SutureHost.system(root: root))
    let snapshot = try session.snapshot(arguments: [manifestPath])
    let plan = session.plan(snapshot)
    let text = PlanRenderer().text(plan, live: snapshot.live)
    return (plan, snapshot.live, text.utf8.count)
}

// Child mode: `PlanBenchmark --child MANIFEST ROOT` runs one plan and prints its peak RSS in KiB.
if CommandLine.arguments.count == 4 && CommandLine.arguments[1] == "--child" {
    let (plan, _, textBytes) = try planOnce(manifestPath: CommandLine.arguments[2], root: CommandLine.arguments[3])
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    print("\(usage.ru_maxrss) \(plan.actions.count) \(textBytes)")
    exit(0)
}

let options = Options()
let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("suture-planbench-\(getpid())")
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
var children: [pid_t] = []

@MainActor func cleanUp() {
    for pid in children { kill(pid, SIGKILL) }
    for pid in children { var s: Int32 = 0; while waitpid(pid, &s, 0) < 0 && errno == EINTR {} }
    children.removeAll()
    try? FileManager.default.removeItem(at: work)
}
signal(SIGINT) { _ in
    // Best effort on ^C: the process group gets the signal too; exit so atexit-free cleanup is skipped.
    exit(130)
}

// 1. Targets.
let targetCount = 5
var targets: [(path: String, buildID: String)] = []
for t in 0..<targetCount {
    let src = work.appendingPathComponent("target\(t).c")
    let bin = work.appendingPathComponent("target\(t)")
    var functions = ""
    for f in 0..<(options.patches / targetCount + 1) {
        functions += "int __attribute__((noinline)) handler_\(t)_\(f)(int x) { return x * \(f + 2) + \(t); }\n"
    }
    try (functions + "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n").write(to: src, atomically: true, encoding: .utf8)
    guard run(["gcc", "-O1", "-o", bin.path, src.path]) == 0 else { fatalError("gcc failed") }
    targets.append((bin.path, buildID(of: bin.path)))
}
let payloadSource = work.appendingPathComponent("payload.c")
try "int replacement(int x) { return x + 1; }\n".write(to: payloadSource, atomically: true, encoding: .utf8)
let payload = work.appendingPathComponent("payload.o")
guard run(["gcc", "-c", "-O1", "-o", payload.path, payloadSource.path]) == 0 else { fatalError("gcc -c failed") }

// 2. Bundles, store, manifest.
let storeRoot = work.appendingPathComponent("root")
try FileManager.default.createDirectory(at: storeRoot.appendingPathComponent("var/lib"), withIntermediateDirectories: true)
for (link, target) in [("proc", "/proc"), ("sys", "/sys"), ("var/lib/dpkg", "/var/lib/dpkg")] {
    try FileManager.default.createSymbolicLink(atPath: storeRoot.appendingPathComponent(link).path,
                                               withDestinationPath: target)
}
let store = PatchStore(root: storeRoot)
var manifest = "apiVersion: suture.dev/v1\nkind: PatchSet\nmetadata: {name: bench}\nspec:\n  patches:\n"
for n in 0..<options.patches {
    let t = n % targetCount
    let target = targets[t]
    let uuid = String(format: "%08x-0000-4000-8000-%012x", n + 1, n + 1)
    let entity = BundleEntity(targetPath: target.path, targetBuildID: target.buildID, payload: "payload.o", payloadSHA256: "",
                              functions: [FunctionPatch(symbol: "handler_\(t)_\(n / targetCount)", offset: 0x1139, size: 16,
                                                        expectedBytes: "f30f1efa", replacement: "replacement")])
    let metadata = BundleMetadata(name: "BENCH-\(n)", version: "1", release: "1", uuid: uuid, kind: .user,
                                  description: "benchmark patch \(n)",
                                  target: BundleTarget(package: "bench", version: "1", arch: "x86_64"),
                                  entities: [entity], patches: [])
    let bundle = try BundleWriter.write(metadata, payloads: ["payload.o": payload], to: work.appendingPathComponent("bundles/b\(n)"))
    if n % 2 == 0 { _ = try store.install(bundle) }
    manifest += "    - name: BENCH-\(n)\n      bundle: bundles/b\(n)\n      sha256: \"\(bundle.digest)\"\n      state: activated\n      target: {path: \(target.path)}\n"
}
let manifestPath = work.appendingPathComponent("bench.yaml").path
try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)

// 3. Processes.
for i in 0..<options.processes { children.append(spawn(targets[i % targetCount].path)) }
// Wait until every child has exec'd (its /proc/PID/exe is the target), with a generous deadline.
let deadline = now() + 120
var pending = Set(children)
while !pending.isEmpty && now() < deadline {
    for pid in pending {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"), exe.hasPrefix(work.path) {
            pending.remove(pid)
        }
    }
    if !pending.isEmpty { usleep(50_000) }
}
guard pending.isEmpty else { cleanUp(); fatalError("\(pending.count) processes did not start") }
let totalProcesses = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil }.count ?? 0
print("PlanBenchmark: \(options.processes) target processes (\(totalProcesses) on the host), \(options.patches) declared patches, \(options.runs) runs")

// 4. Measure.
var planTimes: [Double] = [], catTimes: [Double] = []
var phase: [String: [Double]] = [:]
var lastPlan: Plan?
var lastLive: LiveState?
let rssBefore = currentRSSMiB()
for _ in 0..<options.runs {
    let c0 = now()
    run(["/bin/sh", "-c", "cat /proc/[0-9]*/maps > /dev/null 2>&1"])
    catTimes.append(now() - c0)

    let p0 = now()
    let (plan, live, _) = try planOnce(manifestPath: manifestPath, root: storeRoot.path)
    planTimes.append(now() - p0)
    lastPlan = plan
    lastLive = live

    // Phase split (a separate pass, not counted in the totals).
    let t0 = now()
    let session = PlanSession(host: try SutureHost.system(root: storeRoot.path))
    let (desired, _) = try session.loadDesired(paths: [manifestPath])
    let t1 = now()
    let installed = store.list()
    let t2 = now()
    let live2 = try session.readLive(for: desired, store: installed)
    let t3 = now()
    _ = Planner.plan(desired: desired, live: live2)
    let t4 = now()
    phase["manifests", default: []].append(t1 - t0)
    phase["store", default: []].append(t2 - t1)
    phase["live read", default: []].append(t3 - t2)
    phase["plan", default: []].append(t4 - t3)
}

/// Runs this executable in child mode and returns the child's peak RSS in MiB.
@MainActor func childPeakRSS() -> Double {
    let pipe = Pipe()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    if !FileManager.default.isExecutableFile(atPath: p.executableURL!.path) {
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }
    p.arguments = ["--child", manifestPath, storeRoot.path]
    p.standardOutput = pipe
    do { try p.run() } catch { return -1 }
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (Double(out.split(separator: " ").first ?? "") ?? -1024) / 1024
}

let plan = lastPlan!, live = lastLive!
let activations = plan.actions.filter { $0.kind == .activate }.count
let installs = plan.actions.filter { $0.kind == .install }.count
let matched = live.processes.filter { !$0.objects.isEmpty }.count
let catMedian = median(catTimes), planMedian = median(planTimes)
let ratio = planMedian / catMedian
let rss = peakRSSMiB()

func ms(_ x: Double) -> String { String(format: "%.1f ms", x * 1000) }
print("cat /proc/[0-9]*/maps:    median \(ms(catMedian))  (runs: \(catTimes.map { ms($0) }.joined(separator: ", ")))")
print("suture plan (in-process): median \(ms(planMedian))  (runs: \(planTimes.map { ms($0) }.joined(separator: ", ")))")
for name in ["manifests", "store", "live read", "plan"] {
    print("  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) median \(ms(median(phase[name]!)))")
}
print("plan: \(installs) installs, \(activations) activations; processes matched: \(matched) of \(options.processes)")
print("THRESHOLD plan/cat \(String(format: "%.2f", ratio)) (<= 1.50) \(ratio <= 1.5 ? "OK" : "OVER")")
let childRSS = childPeakRSS()
print("peak RSS of one plan in a fresh process: \(String(format: "%.1f", childRSS)) MiB (goal <= 40) \(childRSS <= 40 ? "OK" : "OVER")")
print("peak RSS of this benchmark process (set-up + \(options.runs * 2) plans): \(String(format: "%.1f", rss)) MiB")
let expectedActivations = options.processes * (options.patches / targetCount)
if activations != expectedActivations || matched != options.processes {
    print("WARNING: expected \(expectedActivations) activations over \(options.processes) processes")
}
cleanUp()
if options.check && ratio > 1.5 { exit(1) }
