// ModelShape, the planner's view of a model, agrees with the tensor table it is derived beside: per layer the MLA
// projections' parameter count, the FFN kind and widths, the expert count; and the cache row width.
import Models
import Testing

@Suite struct ModelShapeTests {
    @Test(arguments: ModelPreset.allCases)
    func shapeAgreesWithTheTensorTable(_ preset: ModelPreset) {
        let c = preset.config
        let shape = c.shape
        let table = TensorTable(config: c)
        #expect(shape.layerCount == c.numHiddenLayers && shape.hidden == c.hiddenSize && shape.vocab == c.vocabSize)
        #expect(shape.routedExperts == c.nRoutedExperts)
        for (l, layer) in shape.layers.enumerated() {
            let specs = table.mainSpecs.filter { $0.layer == l }
            guard case .mla(let mla) = layer.mixer else { Issue.record("layer \(l) is not MLA"); continue }
            // Projections only (the two latent norms are not in the shape's parameter count).
            let projections = specs.filter { $0.role == .attention && $0.shape.count == 2 }.reduce(0) { $0 + $1.parameterCount }
            #expect(Double(projections) == mla.parameters(hidden: c.hiddenSize), "layer \(l)")
            #expect(layer.cacheFloatsPerToken == c.kvLoraRank + c.qkRopeHeadDim)
            if let moe = layer.moe {
                #expect(c.isMoELayer(l))
                #expect(Set(specs.compactMap(\.expert)).count == moe.experts)
                let shared = specs.filter { $0.role == .sharedExpert }.reduce(0) { $0 + $1.parameterCount }
                #expect(shared == 3 * c.hiddenSize * moe.sharedWidth, "layer \(l)")
            } else {
                let dense = specs.filter { $0.role == .denseFFN }.reduce(0) { $0 + $1.parameterCount }
                #expect(dense == 3 * c.hiddenSize * (layer.denseWidth ?? 0), "layer \(l)")
            }
        }
    }
}
