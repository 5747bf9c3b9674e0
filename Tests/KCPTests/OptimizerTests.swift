import Testing
@testable import KCP

/// Update rules checked on one scalar parameter with a constant gradient of 1,
/// values worked out by hand from PyTorch's formulas.
@Suite("Optimizers and schedules")
struct OptimizerTests {
    func run(_ rule: Optimizer.Rule, steps: Int, lr: Float = 0.1) throws -> [Float] {
        var optimizer = Optimizer(rule)
        var parameters = [Tensor(shape: [1], data: [1])]
        var trajectory: [Float] = []
        for _ in 0..<steps {
            try optimizer.update(&parameters, gradients: [Tensor(shape: [1], data: [1])], learningRate: lr)
            trajectory.append(parameters[0].data[0])
        }
        return trajectory
    }

    func expectClose(_ a: [Float], _ b: [Float], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-6, "\(a) vs \(b)", sourceLocation: sourceLocation) }
    }

    @Test func plainSGD() throws {
        // p -= 0.1 * 1 each step.
        expectClose(try run(.sgd(), steps: 3), [0.9, 0.8, 0.7])
    }

    @Test func momentum() throws {
        // buffer 1, then 0.9 * 1 + 1 = 1.9: p = 0.9, then 0.9 - 0.19 = 0.71.
        expectClose(try run(.sgd(momentum: 0.9), steps: 2), [0.9, 0.71])
    }

    @Test func nesterov() throws {
        // direction g + mu b: 1 + 0.9 = 1.9, then 1 + 0.9 * 1.9 = 2.71.
        expectClose(try run(.sgd(momentum: 0.9, nesterov: true), steps: 2), [0.81, 0.539])
    }

    @Test func weightDecay() throws {
        // g = 1 + 0.1 * 1 = 1.1: p = 1 - 0.11; then g = 1 + 0.089: p = 0.89 - 0.1089.
        expectClose(try run(.sgd(weightDecay: 0.1), steps: 2), [0.89, 0.7811])
    }

    @Test func adamW() throws {
        // Step 1: p = 1 * (1 - 0.001) = 0.999, m^ = v^ = 1, p -= 0.1 / (1 + 1e-8).
        // Step 2: p = 0.899 * 0.999, m^ = v^ = 1 again for a constant gradient.
        let expected1: Float = 0.999 - 0.1 / (1 + 1e-8)
        expectClose(try run(.adamW(), steps: 2), [expected1, expected1 * 0.999 - 0.1 / (1 + 1e-8)])
    }

    @Test func mismatchedGradientsAreRefused() throws {
        var optimizer = Optimizer(.sgd())
        var parameters = [Tensor(shape: [2], data: [1, 2])]
        #expect(throws: KCPError.self) {
            try optimizer.update(&parameters, gradients: [Tensor(shape: [3], data: [1, 2, 3])], learningRate: 0.1)
        }
        #expect(throws: KCPError.self) { try optimizer.update(&parameters, gradients: [], learningRate: 0.1) }
        #expect(parameters[0].data == [1, 2] && optimizer.step == 0)
    }

    @Test func schedules() {
        let step = Schedule(base: 1, shape: .step(every: 2, gamma: 0.5))
        #expect((0..<5).map(step.rate) == [1, 1, 0.5, 0.5, 0.25])
        let cosine = Schedule(base: 1, shape: .cosine(total: 4))
        #expect(abs(cosine.rate(at: 0) - 1) < 1e-12 && abs(cosine.rate(at: 2) - 0.5) < 1e-12)
        #expect(abs(cosine.rate(at: 4)) < 1e-12 && abs(cosine.rate(at: 9)) < 1e-12)
        let warm = Schedule(base: 1, shape: .step(every: 1, gamma: 0.1), warmup: 2)
        #expect(abs(warm.rate(at: 0) - 0.5) < 1e-12 && warm.rate(at: 1) == 1 && warm.rate(at: 2) == 1)
        #expect(abs(warm.rate(at: 3) - 0.1) < 1e-12)
    }
}
