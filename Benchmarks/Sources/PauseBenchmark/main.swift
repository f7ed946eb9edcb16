// PauseBenchmark: how long the ptrace engine stops a target process.
//
// Run (as root): swift run -c release --package-path Benchmarks PauseBenchmark [cycles]
//
// Pause = first thread stopped → last thread resumed (UserPatchEngineResult.pauseNanoseconds), measured for
// activation and deactivation of a one-function patch in:
//   1. a process with 1 thread blocked in read() (idle),
//   2. a process with 64 threads (63 in pause(), main in read()),
//   3. a process with 16 CPU-busy threads calling the patched function plus main (2-core machine: oversubscribed),
// and the wall time to activate one patch in 100 idle processes (one ptrace thread per process, as many
// in flight as there are CPUs). Targets are Tests/Fixtures/c/engine_target.c, built here with gcc -O0.
import Foundation
import SutureCore
import SuturePatching

struct CodeImage: UserPatchImageSource {
    var code: [UInt8]
    var segments: [UserPatchSegmentSpec] { [UserPatchSegmentSpec(size: code.count, protection: .readExecute)] }
    func linkImage(base: UInt64, targetBase: UInt64, resolveImport: (String) -> UInt64?) throws -> UserPatchLinkedImage {
        UserPatchLinkedImage(segments: [code], replacements: ["compute_v2": base])
    }
}

@discardableResult
func run(_ path: String, _ args: [String]) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    try! p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fatalError("\(path) \(args) failed") }
    return String(decoding: data, as: UTF8.self)
}

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("suture-pause-\(getpid())")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
let target = dir.appendingPathComponent("engine_target").path
run("/usr/bin/gcc", ["-O0", "-pthread", "-pie", "-fPIE", "-Wl,--build-id", "-o", target,
                     root.appendingPathComponent("Tests/Fixtures/c/engine_target.c").path])
let newC = dir.appendingPathComponent("v2.c")
try "long compute_v2(long x) { return x * 3; }\n".write(to: newC, atomically: true, encoding: .utf8)
run("/usr/bin/gcc", ["-O1", "-fPIC", "-fno-asynchronous-unwind-tables", "-c", "-o", dir.appendingPathComponent("v2.o").path, newC.path])
run("/usr/bin/objcopy", ["-O", "binary", "--only-section=.text", dir.appendingPathComponent("v2.o").path,
                         dir.appendingPathComponent("v2.bin").path])
let code = Array(try Data(contentsOf: dir.appendingPathComponent("v2.bin")))
let buildID: String = {
    let out = run("/usr/bin/readelf", ["-n", target])
    for l in out.split(separator: "\n") where l.contains("Build ID:") { return String(l.split(separator: " ").last!) }
    fatalError("no build-id")
}()
let (offset, size): (UInt64, UInt64) = {
    for l in run("/usr/bin/nm", ["-S", target]).split(separator: "\n") {
        let f = l.split(separator: " ")
        if f.count == 4, f[3] == "compute" { return (UInt64(f[0], radix: 16)!, UInt64(f[1], radix: 16)!) }
    }
    fatalError("compute not found")
}()

func request() -> UserPatchRequest {
    UserPatchRequest(uuid: UUID().uuidString.lowercased(),
                     entity: BundleEntityView(targetPath: target, targetBuildID: buildID, functions: [
                         .init(symbol: "compute", offset: offset, size: size, expectedBytes: [], replacement: "compute_v2"),
                     ]),
                     image: CodeImage(code: code))
}

/// A target process with its stdin kept open (so `read` blocks) and stdout discarded.
final class Target {
    let process = Process()
    let stdin = Pipe()
    init(_ args: [String], threads: Int) {
        process.executableURL = URL(fileURLWithPath: target)
        process.arguments = args
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        try! process.run()
        // Ready when every thread exists.
        while ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task"))?.count ?? 0) < threads {
            usleep(1000)
        }
        usleep(50_000)
    }
    var pid: Int32 { process.processIdentifier }
    func stop() {
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let i = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
    return Double(sorted[max(0, i)]) / 1000
}

/// Thresholds exceeded so far (docs/performance.md); `--check` exits 1 when any was.
nonisolated(unsafe) var thresholdsExceeded = 0

func report(_ name: String, _ values: [UInt64]) {
    let s = values.sorted()
    let p50 = percentile(s, 0.5), p99 = percentile(s, 0.99)
    print(String(format: "%-34@ n=%4d  p50 %8.1f us  p99 %8.1f us  max %8.1f us  p99/p50 %.2f",
                 name as NSString, s.count, p50, p99, Double(s.last ?? 0) / 1000, p50 > 0 ? p99 / p50 : 0))
    // Recorded threshold, as a ratio measured in this run: p99 <= 2 x p50.
    let ratio = p50 > 0 ? p99 / p50 : 0
    print(String(format: "THRESHOLD %@ p99/p50 %.2f (<= 2.00) %@", name as NSString, ratio, ratio <= 2 ? "OK" : "OVER"))
    if ratio > 2 { thresholdsExceeded += 1 }
}

let check = CommandLine.arguments.contains("--check")
let positional = CommandLine.arguments.dropFirst().filter { $0 != "--check" }
let cycles = positional.first.flatMap { Int($0) } ?? 200
print("PauseBenchmark: \(cycles) activate/deactivate cycles per scenario; \(ProcessInfo.processInfo.activeProcessorCount) CPUs")

for (name, args, threads) in [("1 idle thread", ["idle", "0"], 1), ("64 idle threads", ["idle", "63"], 64),
                              ("16 busy threads + main", ["busy", "16"], 17)] {
    let t = Target(args, threads: threads)
    var on: [UInt64] = [], off: [UInt64] = []
    var retries = 0
    let r = request()
    for _ in 0..<cycles {
        do {
            let a = try UserPatchEngine.activate(r, pid: t.pid, options: UserPatchOptions(busyDeadline: 10))
            on.append(a.pauseNanoseconds ?? 0)
            retries += a.busyRetries
            let d = try UserPatchEngine.deactivate(uuid: r.uuid, pid: t.pid, options: UserPatchOptions(busyDeadline: 10))
            off.append(d.pauseNanoseconds ?? 0)
            retries += d.busyRetries
        } catch {
            print("  \(name): \(error)")
        }
    }
    report("\(name): activate", on)
    report("\(name): deactivate", off)
    if retries > 0 { print("  (\(retries) BUSY retries; only successful windows are counted)") }
    t.stop()
}

// 100 processes, one patch.
// Shared with the worker threads below; every access to next/failures holds `lock`.
nonisolated(unsafe) let fleet = (0..<100).map { _ in Target(["idle", "0"], threads: 1) }
nonisolated(unsafe) let r = request()
let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
nonisolated(unsafe) let lock = NSLock()
nonisolated(unsafe) var next = 0
nonisolated(unsafe) var failures = 0
let start = Date()
let group = DispatchGroup()
for _ in 0..<workers {
    group.enter()
    Thread {
        while true {
            lock.lock()
            let i = next
            next += 1
            lock.unlock()
            if i >= fleet.count { break }
            do { _ = try UserPatchEngine.activate(r, pid: fleet[i].pid) } catch {
                lock.lock(); failures += 1; lock.unlock()
                print("  pid \(fleet[i].pid): \(error)")
            }
        }
        group.leave()
    }.start()
}
group.wait()
let wall = Date().timeIntervalSince(start)
print(String(format: "100 processes: activated in %.3f s wall (%d ptrace threads, %d failures)", wall, workers, failures))
for t in fleet { t.stop() }
if check && thresholdsExceeded > 0 { exit(1) }
