/// Float buffers for the kernels' scratch, aligned to a 64-byte cache line.
///
/// `UnsafeMutablePointer<Float>.allocate` aligns to 16 bytes, so a 16-float
/// load from scratch laid out in whole vectors (the pointwise kernel's
/// chunks, the direct kernel's windows and tiles) straddled two cache lines
/// three times in four. With the workers' scratch aligned, ResNet-50 at
/// batch 1 ran 5-6% faster, its 1x1 convs 4-8% (Xeon, 1 thread, four
/// alternating runs). Freed with `deallocate()`.
func allocateAlignedFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let count = max(1, count), floatSize = MemoryLayout<Float>.stride
    return UnsafeMutableRawPointer.allocate(byteCount: count * floatSize, alignment: cacheLineFloats * floatSize)
        .bindMemory(to: Float.self, capacity: count)
}

/// Floats of a 64-byte cache line.
let cacheLineFloats = 16
