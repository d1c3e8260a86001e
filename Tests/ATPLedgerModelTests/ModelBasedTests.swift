import ATPLedger
import Foundation
import Testing

/// The engine and the reference fed the same random stream. Replay a failure with
/// `ATP_MODEL_SEED=<seed> swift test --filter ATPLedgerModelTests`; run longer with
/// `ATP_MODEL_STEPS=<steps>` (tools/model-soak.sh does both over successive seeds).
@Suite struct ModelBasedTests {
    /// Seeds 5 and 6 draw a short reservation retention (forgetting, reused ids); 1–3 the default.
    static let defaultSeeds: [UInt64] = [1, 2, 3, 5, 6]
    static let defaultSteps = 4000

    static var seeds: [UInt64] {
        if let text = ProcessInfo.processInfo.environment["ATP_MODEL_SEED"], let seed = UInt64(text) { return [seed] }
        return defaultSeeds
    }

    static var steps: Int {
        if let text = ProcessInfo.processInfo.environment["ATP_MODEL_STEPS"], let steps = Int(text) { return steps }
        return defaultSteps
    }

    @Test(arguments: ModelBasedTests.seeds)
    func engineMatchesReference(seed: UInt64) {
        let run = ModelRun(seed: seed)
        defer { run.engine.shutdown() }
        print("model: seed=\(seed) steps=\(Self.steps) starting (\(run.configurationSummary))")
        do {
            try run.run(steps: Self.steps)
            print("model: seed=\(seed) steps=\(Self.steps) passed (\(run.summary))")
        } catch let mismatch as ModelMismatch {
            Issue.record(Comment(rawValue: mismatch.description))
        } catch {
            Issue.record("seed=\(seed): unexpected error \(error)")
        }
    }
}
