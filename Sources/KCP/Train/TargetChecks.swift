extension Task {
    /// Checks a dataset named `name` ("train" or "val") against a network
    /// output of shape `output` (batch first), the one check training and
    /// validation data both pass: targets shaped for the task (`[S]` labels
    /// for classification, `[S, H, W]` for segmentation, the output's shape
    /// otherwise), finite, and labels integers in `[0, classes)` or equal to
    /// the ignore label.
    /// - Throws: `invalidArgument` naming `"<name> targets"`.
    func check(_ data: Dataset, output: [Int], name: String) throws {
        let argument = "\(name) targets", samples = data.count
        let expected: [Int]
        switch self {
        case .classification: expected = [samples]
        case .segmentation: expected = output.count == 4 ? [samples] + output.dropFirst(2) : [samples, -1, -1]
        case .disparity, .regression: expected = [samples] + output.dropFirst()
        }
        try require(data.targets.shape == expected, argument,
                    "the network's output \(output) needs targets of shape \(expected), got \(data.targets.shape)")
        try require(data.targets.data.allSatisfy(\.isFinite), argument, "must be finite")
        let ignore: Int32?
        switch self {
        case .classification: ignore = nil
        case let .segmentation(ignoreLabel): ignore = ignoreLabel
        case .disparity, .regression: return
        }
        let classes = output[1]
        for (index, label) in data.targets.data.enumerated() {
            guard label == label.rounded() else {
                throw KCPError.invalidArgument(argument: argument,
                                               reason: "labels must be integer class indices, got \(label) at \(index)")
            }
            guard (0..<Float(classes)).contains(label) || ignore.map({ Float($0) == label }) == true else {
                throw KCPError.invalidArgument(argument: argument, reason: "labels must be classes of the output's "
                    + "\(classes) (0 to \(classes - 1))" + (ignore.map { " or the ignore_label \($0)" } ?? " (no ignore_label is set)")
                    + ", got \(label) at \(index)")
            }
        }
    }
}
