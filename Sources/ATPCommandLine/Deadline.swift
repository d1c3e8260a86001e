import Synchronization

/// Bounds how long the CLI waits for the server.
///
/// The client's requests wait on continuations that do not react to task cancellation, so a plain
/// task-group race would wait for the slow request anyway. Instead the operation and a timer race
/// for one continuation; the loser is abandoned. On timeout `onTimeout` runs (the caller closes the
/// connection there, which fails the abandoned request), and a late successful result is handed to
/// `discardLate` (a connection that opened after its deadline is closed there).
public enum Deadline {
    /// Runs `operation` and returns its result, or throws `CommandLineError.timeout` when it takes
    /// longer than `milliseconds`. Throws `CancellationError` when the calling task is cancelled.
    public static func run<Value: Sendable>(
        milliseconds: Int, what: String,
        onTimeout: @escaping @Sendable () async -> Void = {},
        discardLate: @escaping @Sendable (Value) async -> Void = { _ in },
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        precondition(milliseconds > 0, "a deadline needs a positive duration")
        let race = Race<Value>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, Error>) in
                guard race.arm(continuation) else { return }
                let work = Task {
                    do {
                        let value = try await operation()
                        if !race.finish(.success(value)) { await discardLate(value) }
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                let timer = Task {
                    do { try await Task.sleep(for: .milliseconds(milliseconds)) } catch { return }
                    if race.finish(.failure(CommandLineError.timeout(what, milliseconds: milliseconds))) {
                        await onTimeout()
                        work.cancel()
                    }
                }
                race.setTimer(timer)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }
}

/// One continuation that the first of several finishers resumes; later finishers learn they lost.
private final class Race<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, Error>?
        var outcome: Result<Value, Error>?
        var timer: Task<Void, Never>?
        var isFinished = false
    }

    private let state = Mutex(State())

    /// Installs the continuation. When a finisher (cancellation) came first, resumes it at once
    /// and returns false: there is nothing left to race.
    func arm(_ continuation: CheckedContinuation<Value, Error>) -> Bool {
        let early: Result<Value, Error>? = state.withLock { state in
            if let outcome = state.outcome { return outcome }
            state.continuation = continuation
            return nil
        }
        guard let early else { return true }
        continuation.resume(with: early)
        return false
    }

    /// Remembers the timer so that an early finish can cancel it.
    func setTimer(_ timer: Task<Void, Never>) {
        let cancelNow = state.withLock { state in
            if state.isFinished { return true }
            state.timer = timer
            return false
        }
        if cancelNow { timer.cancel() }
    }

    /// Resumes the continuation with `outcome` if nobody did yet. Returns whether this call won.
    @discardableResult
    func finish(_ outcome: Result<Value, Error>) -> Bool {
        let (won, continuation, timer) = state.withLock { state -> (Bool, CheckedContinuation<Value, Error>?, Task<Void, Never>?) in
            if state.isFinished { return (false, nil, nil) }
            state.isFinished = true
            let continuation = state.continuation
            if continuation == nil { state.outcome = outcome }
            state.continuation = nil
            let timer = state.timer
            state.timer = nil
            return (true, continuation, timer)
        }
        timer?.cancel()
        continuation?.resume(with: outcome)
        return won
    }
}
