import Testing
@testable import KCP

/// Native fine-tuning on a small per-pixel task: label a pixel 1 where the
/// sum of the two input channels around it is positive.
@Suite("Fine-tuning")
struct FineTunerTests {
    static func task(samples: Int, seed: UInt64) throws -> Dataset {
        var rng = SplitMix64(seed: seed)
        let images = (0..<(samples * 2 * 8 * 8)).map { _ in Float(rng.nextUnit() * 2 - 1) }
        var labels = [Float](repeating: 0, count: samples * 64)
        for n in 0..<samples {
            for p in 0..<64 where images[(n * 2) * 64 + p] + images[(n * 2 + 1) * 64 + p] > 0 { labels[n * 64 + p] = 1 }
        }
        return try Dataset(inputs: [Tensor(shape: [samples, 2, 8, 8], data: images)],
                           targets: Tensor(shape: [samples, 8, 8], data: labels))
    }

    static func network() throws -> Network {
        let b = NetBuilder(seed: 3)
        let x = try b.input("x", [1, 2, 8, 8])
        let h = try b.op("r1", .activation(.relu), try b.batchNorm("bn1", try b.conv("c1", x, out: 16)))
        let g = try b.op("r2", .activation(.relu), try b.conv("c2", h, out: 16))
        try b.output(try b.conv("head", g, out: 2, kernel: 1))
        return b.net
    }

    static func settings(prune: PruneSchedule? = nil, epochs: Int = 12) -> FineTuneSettings {
        FineTuneSettings(epochs: epochs, batchSize: 16, task: .segmentation(ignoreLabel: nil),
                         optimizer: .sgd(momentum: 0.9, weightDecay: 1e-4),
                         schedule: Schedule(base: 0.2, shape: .cosine(total: epochs * 4)), prune: prune, seed: 1)
    }

    @Test func learnsAndSoftPrunesToHalfTheMACs() throws {
        let train = try Self.task(samples: 64, seed: 1), validation = try Self.task(samples: 32, seed: 2)
        let net = try Self.network()
        let prune = PruneSchedule(target: PruningTarget(amount: .macsReduction(0.5)), every: 1, rampEpochs: 3)
        var tuner = try FineTuner(network: net, settings: Self.settings(prune: prune), train: train, validation: validation)
        while !tuner.finished { _ = try tuner.runEpoch() }
        let history = tuner.history
        #expect(history.count == 12)
        #expect(history.last!.loss < history.first!.loss)
        #expect(history.last!.metric > 0.85, "mean IoU \(history.last!.metric)")
        let before = try net.cost().macs
        #expect(Double(history.last!.macs) <= 0.5 * Double(before))
        let (compact, optimizer) = try tuner.compacted()
        #expect(try compact.cost().macs == history.last!.macs)
        let learnable = compact.learnableParameters.sorted()
        #expect(zip(learnable, optimizer.firstMoments).allSatisfy { compact.parameters[$0].tensor.count == $1.count })
        // The compact network computes what the masked one does.
        let inputs = validation.batch(Array(0..<8)).inputs
        let plan = try #require(tuner.plan)
        let masked = try tuner.network.masked(plan.spaces, keepClasses: plan.keep)
        let (a, b) = (try compact.forward(inputs)[0], try masked.forward(inputs)[0])
        let scale = b.data.map(abs).max()!
        #expect(zip(a.data, b.data).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
    }

    @Test func hardPruningKeepsPrunedWeightsAtZero() throws {
        let train = try Self.task(samples: 32, seed: 1)
        let prune = PruneSchedule(target: PruningTarget(amount: .ratio(0.5)), hard: true, every: 2)
        var tuner = try FineTuner(network: try Self.network(), settings: Self.settings(prune: prune, epochs: 2), train: train)
        let plan = try #require(tuner.plan)
        _ = try tuner.runEpoch()
        let zeroed = try tuner.network.masked(plan.spaces, keepClasses: plan.keep)
        for index in tuner.network.learnableParameters {
            let (p, q) = (tuner.network.parameters[index], zeroed.parameters[index])
            #expect(p.tensor.data == q.tensor.data, "\(p.name) regrew")
        }
    }

    @Test func softPruningLetsMomentumRegrowPrunedWeights() throws {
        let train = try Self.task(samples: 32, seed: 1)
        // Nothing pruned before the first step (the ramp), half the channels after epoch 2, with momentum built up.
        let prune = PruneSchedule(target: PruningTarget(amount: .ratio(0.5)), every: 2, rampEpochs: 1)
        var tuner = try FineTuner(network: try Self.network(), settings: Self.settings(prune: prune, epochs: 4), train: train)
        for _ in 0..<2 { _ = try tuner.runEpoch() }
        let plan = try #require(tuner.plan)
        let masked = tuner.network
        #expect(masked.parameters.map(\.tensor.data) == (try masked.masked(plan.spaces, keepClasses: plan.keep)).parameters.map(\.tensor.data))
        _ = try tuner.runEpoch()
        let zeroed = try tuner.network.masked(plan.spaces, keepClasses: plan.keep)
        let regrown = tuner.network.learnableParameters.filter { tuner.network.parameters[$0].tensor.data != zeroed.parameters[$0].tensor.data }
        #expect(!regrown.isEmpty, "no pruned weight regrew in soft mode")
    }

    @Test func sameSeedSameHistoryAndWeights() throws {
        let train = try Self.task(samples: 32, seed: 1), validation = try Self.task(samples: 8, seed: 2)
        func run() throws -> FineTuner {
            var tuner = try FineTuner(network: try Self.network(), settings: Self.settings(epochs: 2), train: train,
                                      validation: validation)
            while !tuner.finished { _ = try tuner.runEpoch() }
            return tuner
        }
        let (a, b) = (try run(), try run())
        #expect(a.history == b.history)
        #expect(zip(a.network.parameters, b.network.parameters).allSatisfy { $0.tensor.data == $1.tensor.data })
    }

    @Test func stoppingLeavesTheLastCompletedStep() throws {
        let train = try Self.task(samples: 32, seed: 1)
        var tuner = try FineTuner(network: try Self.network(), settings: Self.settings(epochs: 1), train: train)
        var seen = 0
        let record = try tuner.runEpoch { step, _, _ in
            seen = step
            return step < 1
        }
        #expect(record == nil && seen == 1 && tuner.history.isEmpty && tuner.optimizer.step == 1)
    }

    @Test func badSettingsAreRefused() throws {
        let train = try Self.task(samples: 4, seed: 1)
        var bad = Self.settings()
        bad.batchSize = 0
        #expect(throws: KCPError.self) { _ = try FineTuner(network: try Self.network(), settings: bad, train: train) }
        #expect(throws: KCPError.self) {
            _ = try Dataset(inputs: [Tensor(zeros: [3, 2, 8, 8])], targets: Tensor(zeros: [4, 8, 8]))
        }
    }
}

@Suite("Fine-tuning checkpoints")
struct FineTunerCheckpointTests {
    @Test(arguments: [Optimizer.Rule.sgd(momentum: 0.9), .adamW()])
    func resumingGivesTheUninterruptedRun(rule: Optimizer.Rule) throws {
        let train = try FineTunerTests.task(samples: 32, seed: 1), validation = try FineTunerTests.task(samples: 8, seed: 2)
        var settings = FineTunerTests.settings(prune: PruneSchedule(target: PruningTarget(amount: .ratio(0.5)), every: 1,
                                                                   rampEpochs: 2), epochs: 4)
        settings.optimizer = rule
        var straight = try FineTuner(network: try FineTunerTests.network(), settings: settings, train: train,
                                     validation: validation)
        while !straight.finished { _ = try straight.runEpoch() }

        var first = try FineTuner(network: try FineTunerTests.network(), settings: settings, train: train,
                                  validation: validation)
        _ = try first.runEpoch()
        _ = try first.runEpoch()
        let saved = first.checkpoint()
        var resumed = try FineTuner(network: try FineTunerTests.network(), settings: settings, train: train,
                                    validation: validation)
        try resumed.restore(saved)
        while !resumed.finished { _ = try resumed.runEpoch() }
        #expect(resumed.history.map(\.loss) == straight.history.map(\.loss))
        #expect(zip(resumed.network.parameters, straight.network.parameters).allSatisfy { $0.tensor.data == $1.tensor.data })
        #expect(resumed.plan?.keep == straight.plan?.keep)
    }

    @Test func corruptCheckpointsAreRefusedAndChangeNothing() throws {
        let train = try FineTunerTests.task(samples: 16, seed: 1)
        var tuner = try FineTuner(network: try FineTunerTests.network(), settings: FineTunerTests.settings(epochs: 2),
                                  train: train)
        _ = try tuner.runEpoch()
        let saved = tuner.checkpoint()
        var fresh = try FineTuner(network: try FineTunerTests.network(), settings: FineTunerTests.settings(epochs: 2),
                                  train: train)
        let before = fresh.network.parameters.map(\.tensor.data)
        for corrupt in [Array(saved.prefix(saved.count / 2)), [UInt8](repeating: 7, count: 64), [], saved + [0]] {
            #expect(throws: KCPError.self) { try fresh.restore(corrupt) }
        }
        #expect(fresh.network.parameters.map(\.tensor.data) == before && fresh.history.isEmpty)
    }
}

@Suite("Augmentation")
struct AugmentationTests {
    @Test func imagesAndPerPixelTargetsMoveTogether() throws {
        var rng = SplitMix64(seed: 4)
        let image = Tensor(shape: [6, 2, 5, 7], data: (0..<(6 * 2 * 35)).map { _ in Float(rng.nextUnit()) + 1 })
        // The target is the image's first channel: after augmentation it must still be, where not filled.
        var targetData = [Float]()
        for n in 0..<6 { targetData += image.data[(n * 70)..<(n * 70 + 35)] }
        let target = Tensor(shape: [6, 5, 7], data: targetData)
        var augmentRng = SplitMix64(seed: 9)
        let (moved, movedTarget) = Augmentation(flip: true, shift: 2)
            .apply([image], targets: target, fillLabel: -1, rng: &augmentRng)
        var changed = 0
        for n in 0..<6 {
            let channel = Array(moved[0].data[(n * 70)..<(n * 70 + 35)])
            let labels = Array(movedTarget!.data[(n * 35)..<(n * 35 + 35)])
            for (value, label) in zip(channel, labels) {
                #expect(label == -1 ? value == 0 : label == value)
            }
            if channel != Array(image.data[(n * 70)..<(n * 70 + 35)]) { changed += 1 }
            // Every value present is one of the sample's own.
            #expect(Set(channel.filter { $0 != 0 }).isSubset(of: Set(image.data[(n * 70)..<(n * 70 + 35)])))
        }
        #expect(changed > 0)
    }

    @Test func aFlipMirrorsAndTwiceIsTheIdentity() {
        let image = Tensor(shape: [1, 1, 2, 3], data: [1, 2, 3, 4, 5, 6])
        var rng = SplitMix64(seed: 0)
        var flipped = image
        while flipped == image {  // until a draw flips it
            flipped = Augmentation(flip: true).apply([image], targets: nil, fillLabel: 0, rng: &rng).0[0]
        }
        #expect(flipped.data == [3, 2, 1, 6, 5, 4])
        var twice = flipped
        while twice == flipped {
            twice = Augmentation(flip: true).apply([flipped], targets: nil, fillLabel: 0, rng: &rng).0[0]
        }
        #expect(twice == image)
    }

    @Test func refusedWhereItWouldBeWrong() throws {
        let train = try FineTunerTests.task(samples: 4, seed: 1)
        var settings = FineTunerTests.settings()
        settings.augmentation = Augmentation(shift: 2)
        #expect(throws: KCPError.self) { _ = try FineTuner(network: try FineTunerTests.network(), settings: settings, train: train) }
        settings.task = .disparity
        settings.augmentation = Augmentation(flip: true)
        #expect(throws: KCPError.self) { _ = try FineTuner(network: try FineTunerTests.network(), settings: settings, train: train) }
    }
}

@Suite("Fine-tuning failures")
struct FineTunerFailureTests {
    @Test func aDivergingLossNamesTheEpochAndStep() throws {
        let train = try FineTunerTests.task(samples: 32, seed: 1)
        var settings = FineTunerTests.settings(epochs: 3)
        settings.schedule = Schedule(base: 1e12)
        var tuner = try FineTuner(network: try FineTunerTests.network(), settings: settings, train: train)
        do {
            while !tuner.finished { _ = try tuner.runEpoch() }
            Issue.record("training with a learning rate of 1e12 did not fail")
        } catch let KCPError.numeric(message) {
            #expect(message.contains("epoch") && message.contains("step"), "\(message)")
        }
    }
}
