import Foundation

/// One dedicated OS thread that runs every ptrace request for a target.
///
/// The kernel ties a tracee to the tracer *thread* that attached it: a `ptrace` request from any other
/// thread fails with `ESRCH` (ptrace(2), "the tracee is attached to the tracer thread"). Swift tasks hop
/// between cooperative-pool threads, so the engine never calls ptrace from async code: it submits closures
/// here and blocks (or awaits) until they finish. Jobs run one at a time, in submission order.
public final class PtraceThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var finished = false

    /// Starts the thread. `name` shows in `/proc/self/task/*/comm` (truncated to 15 bytes).
    public init(name: String = "suture-ptrace") {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs `body` on the ptrace thread and returns its result; the caller blocks until it finishes.
    public func run<T>(_ body: @escaping () -> T) -> T {
        let box = ResultBox<T>()
        condition.lock()
        precondition(!stopping, "PtraceThread used after shutdown")
        jobs.append {
            let value = body()
            box.condition.lock()
            box.value = value
            box.condition.broadcast()
            box.condition.unlock()
        }
        condition.signal()
        condition.unlock()
        box.condition.lock()
        while box.value == nil { box.condition.wait() }
        let value = box.value!
        box.condition.unlock()
        return value
    }

    /// Lets the thread finish its queued jobs and exit; waits for it.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private final class ResultBox<T>: @unchecked Sendable {
        let condition = NSCondition()
        var value: T?
    }
}
