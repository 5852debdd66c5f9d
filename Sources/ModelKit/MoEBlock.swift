// MoEBlock: one mixture-of-experts FFN: router -> dispatcher.layout -> dispatch -> expert FFNs -> combine, plus an
// optional shared expert added to the output. Family-free: the router and the FFNs are given, the dispatcher decides
// where the experts run (this process or an all-to-all over the stage), and the output bits do not depend on it.
import Kernels
import Tensors

public struct MoEBlock {
    public let layer: Int
    /// nil only for `runExperts` with a routing decided elsewhere.
    public let router: Router?
    /// The routed experts this rank holds, by logical id.
    public let experts: [Int: FeedForward]
    public let shared: FeedForward?
    public let dispatcher: any ExpertDispatcher
    public let pool: ComputePool
    public let phases: (any PhaseObserver)?
    /// The lane's tensor-parallel group (the shared expert holds this rank's columns when it has several ranks).
    public let tp: any TensorParallelGroup

    public init(layer: Int, router: Router?, experts: [Int: FeedForward], shared: FeedForward?, dispatcher: any ExpertDispatcher,
                pool: ComputePool, phases: (any PhaseObserver)?, tp: any TensorParallelGroup = SingleRank()) {
        self.tp = tp
        self.layer = layer
        self.router = router
        self.experts = experts
        self.shared = shared
        self.dispatcher = dispatcher
        self.pool = pool
        self.phases = phases
    }

    /// `[T, D] -> [T, D]`.
    public func callAsFunction(_ x: Matrix, observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        guard let router else { preconditionFailure("MoEBlock of layer \(layer) has no router") }
        if tp.size > 1 { return try tensorParallel(router, x, observe: observe) }
        // Where the routed and shared FFNs would share regions even if the tokens picked as many experts as they can.
        let k = router.parameters.topK
        if let shared, FeedForward.sharesRegions(rows: x.rows * (k + 1), ffns: min(experts.count, x.rows * k) + 1, pool: pool) {
            return try behindShared(shared, x, observe: observe)
        }
        let routerStart = phases?.begin() ?? 0
        let routing = router.route(x, pool: pool)
        phases?.end(routerStart, .router, layer: layer)
        observe?(.routing(layer: layer, routing))
        // Not decode-sized (prefill, or one thread): the shared expert runs as its own products.
        var out = try runExperts(routing: routing, x: x)
        if let shared {
            let sharedStart = phases?.begin() ?? 0
            Ops.addInPlace(&out, shared(x, pool: pool))
            phases?.end(sharedStart, .sharedExpert, layer: layer)
        }
        return out
    }

    /// A decode-sized MoE layer with a shared expert on several threads: the shared expert's products open both
    /// regions and the workers stream them while this thread routes, dispatches and packs the routed products, which
    /// join the same regions (`FeedForward.batchedFlat(lead:)`). Same bits as routing, `runExperts` and then adding the
    /// shared expert. Phases: the router and the dispatcher's own spans inside, `expertFFN` around them.
    public func behindShared(_ shared: FeedForward, _ x: Matrix, observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        guard let router else { preconditionFailure("MoEBlock of layer \(layer) has no router") }
        var received: [ExpertBatch] = [], handle: (any DispatchHandle)?
        var expertStart = phases?.begin() ?? 0
        let (sharedOut, y, offsets) = try FeedForward.batchedFlat(lead: (x, shared), capacity: experts.count, more: {
            phases?.end(expertStart, .expertFFN, layer: layer)
            let routerStart = phases?.begin() ?? 0
            let routing = router.route(x, pool: pool)  // inside the region: on this thread
            phases?.end(routerStart, .router, layer: layer)
            observe?(.routing(layer: layer, routing))
            (received, handle) = try dispatcher.dispatch(x, try dispatcher.layout(routing))
            expertStart = phases?.begin() ?? 0
            return try expertItems(received)
        }, pool: pool)
        phases?.end(expertStart, .expertFFN, layer: layer)
        var out = try y.withUnsafeBufferPointer { try dispatcher.combine(weighting: $0, offsets: offsets, received: received, handle!) }
        Ops.addInPlace(&out, sharedOut)
        return out
    }

    /// Tensor parallel: the lane's ranks hold the same tokens; each routes and dispatches its share of them (the
    /// all-to-all spans every rank of the stage), the group gathers the routed rows back in token order, and the shared
    /// expert runs split by its columns. Per token the same sums in the same order as on one rank.
    func tensorParallel(_ router: Router, _ x: Matrix, observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        let mine = x.rows(tp.share(of: x.rows))
        let routerStart = phases?.begin() ?? 0
        let routing = router.route(mine, pool: pool)
        phases?.end(routerStart, .router, layer: layer)
        observe?(.routing(layer: layer, routing))
        var out = try tp.gatherRows(try runExperts(routing: routing, x: mine), rows: x.rows)
        if let shared {
            let sharedStart = phases?.begin() ?? 0
            Ops.addInPlace(&out, try shared(x, tp: tp, pool: pool))
            phases?.end(sharedStart, .sharedExpert, layer: layer)
        }
        return out
    }

    /// Routed part of an MoE layer through the dispatcher: dispatch, grouped expert FFNs (one batched linear per
    /// expert), weight each output row, combine (sum in ascending expert id per token).
    public func runExperts(routing: Routing, x: Matrix) throws -> Matrix {
        let (received, handle) = try dispatcher.dispatch(x, try dispatcher.layout(routing))
        let items = try expertItems(received)
        // Every expert that received rows, in one batched product (same bits as one FFN call per expert). Each weighted
        // row is w · y (one rounding, as `Ops.scaleRows`): in shared regions the dispatcher weights the rows as it
        // sums them out of the batched outputs, otherwise they are weighted into the returned batches.
        let expertStart = phases?.begin() ?? 0
        if FeedForward.sharesRegions(items, pool: pool) {
            let (y, offsets) = FeedForward.batchedFlat(items, pool: pool)
            phases?.end(expertStart, .expertFFN, layer: layer)
            return try y.withUnsafeBufferPointer { try dispatcher.combine(weighting: $0, offsets: offsets, received: received, handle) }
        }
        let ys = FeedForward.batched(items, pool: pool)
        let outputs = zip(received, ys).map { batch, y in
            ExpertBatch(expert: batch.expert, rows: Ops.scaleRows(y, batch.weights), weights: batch.weights)
        }
        phases?.end(expertStart, .expertFFN, layer: layer)
        return try dispatcher.combine(outputs, handle)
    }

    /// The FFN of every received batch's expert, with its rows; an expert whose weights are not held is an error.
    func expertItems(_ received: [ExpertBatch]) throws -> [(x: Matrix, ffn: FeedForward)] {
        try received.map { batch in
            guard let ffn = experts[batch.expert] else {
                throw ModelError(.expertNotLocal, "expert \(batch.expert) of layer \(layer) received tokens but its weights are not loaded here",
                                 subject: "model.layers.\(layer).mlp.experts.\(batch.expert)")
            }
            return (x: batch.rows, ffn: ffn)
        }
    }
}
