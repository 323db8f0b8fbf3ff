using static TorchSharp.torch;
using static TorchSharp.torch.autograd;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Losses;

/// <summary>
/// The instance-classification cross-entropy over N classes computed chunk by chunk, forward and backward, so the
/// [V, N] logits matrix never exists: the forward keeps a running log-sum-exp per view, the backward recomputes each
/// chunk's logits from the saved log-sum-exp and turns them straight into that chunk's gradients. Memory beyond W
/// and its gradient is O(V × chunk). The result equals <see cref="ConicLosses.InstanceClassificationMaterialized"/>
/// up to float rounding, gradients included (tests).
/// </summary>
/// <remarks>
/// Inputs: unit-norm embeddings [V, D] (normalised by the caller, so autograd handles that part), raw class weights
/// W [N, D] (normalised here, per chunk, and differentiated through the normalisation by hand), int64 targets [V],
/// the temperature and the chunk size.
/// </remarks>
sealed class ChunkedInstanceClassification : SingleTensorFunction<ChunkedInstanceClassification>
{
    // F.normalize's default: rows shorter than this are divided by it instead of their norm.
    const double NormFloor = 1e-12;

    public override string Name => nameof(ChunkedInstanceClassification);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (unitEmbeddings, classWeights, targets, temperature, chunkSize) = Unpack(vars);
        long classes = classWeights.shape[0];
        // 1/τ folded into the small [V, D] side once, so no pass over [V, chunk] pays for it.
        var scaledEmbeddings = unitEmbeddings.div(Kept(temperature));
        // Blocks are computed transposed, [chunk, V] = Ŵ_chunk · (ẑ/τ)ᵀ: this CPU's GEMM is faster with the long
        // dimension first (bench/), and the per-view sums become column sums.
        var scaledEmbeddingsT = scaledEmbeddings.t().contiguous();
        var logSumExp = ShiftedExpSumIsSafe(temperature)
            ? ChunkedLogSumExpWithFixedShift(scaledEmbeddingsT, classWeights, temperature, chunkSize)
            : ChunkedLogSumExp(scaledEmbeddingsT, classWeights, chunkSize);
        var targetLogits = scaledEmbeddings.mul(F.normalize(classWeights.index_select(0, targets), dim: 1)).sum(1);
        ctx.save_for_backward(new List<Tensor> { unitEmbeddings, classWeights, targets, logSumExp });
        ctx.save_data("temperature", temperature);
        ctx.save_data("chunk", chunkSize);
        return logSumExp.sub(targetLogits).mean();
    }

    /// <summary>
    /// Cosine logits lie in [−1/τ, 1/τ], so exp(logit − 1/τ) needs no running maximum: it cannot overflow, and it cannot
    /// underflow (to zero, with denormals flushed) while 2/τ stays well inside float32's exponent range. That saves
    /// the passes a log-sum-exp spends finding and subtracting each block's maximum.
    /// </summary>
    static bool ShiftedExpSumIsSafe(double temperature) => 2 / temperature <= 60;

    static Tensor ChunkedLogSumExpWithFixedShift(Tensor scaledEmbeddingsT, Tensor classWeights, double temperature, long chunkSize)
    {
        long classes = classWeights.shape[0];
        var shift = full(1, 1, Kept(-1 / temperature), dtype: scaledEmbeddingsT.dtype, device: scaledEmbeddingsT.device);
        var expSum = zeros(scaledEmbeddingsT.shape[1], dtype: scaledEmbeddingsT.dtype, device: scaledEmbeddingsT.device);
        for (long start = 0; start < classes; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            var unitWeights = F.normalize(classWeights.slice(0, start, Math.Min(start + chunkSize, classes), 1), dim: 1);
            expSum.add_(shift.addmm(unitWeights, scaledEmbeddingsT).exp_().sum(dim: 0), Kept(1));
        }
        return expSum.log_().add_(Kept(1 / temperature), Kept(1));
    }

    static Tensor ChunkedLogSumExp(Tensor scaledEmbeddingsT, Tensor classWeights, long chunkSize)
    {
        long classes = classWeights.shape[0];
        var logSumExp = full(scaledEmbeddingsT.shape[1], Kept(double.NegativeInfinity), dtype: scaledEmbeddingsT.dtype, device: scaledEmbeddingsT.device);
        for (long start = 0; start < classes; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            var unitWeights = F.normalize(classWeights.slice(0, start, Math.Min(start + chunkSize, classes), 1), dim: 1);
            logSumExp.copy_(logaddexp(logSumExp, unitWeights.matmul(scaledEmbeddingsT).logsumexp(0)));
        }
        return logSumExp;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (unitEmbeddings, classWeights, targets, logSumExp) = (saved[0], saved[1], saved[2], saved[3]);
        double temperature = (double)ctx.get_data("temperature");
        long chunkSize = (long)ctx.get_data("chunk");
        long classes = classWeights.shape[0];
        var scaledEmbeddingsT = unitEmbeddings.div(Kept(temperature)).t().contiguous();
        var negativeLogSumExp = logSumExp.neg().unsqueeze(0);
        // d loss / d logit(v, j) = (softmax(v, j) − [j = target(v)]) / V, and d logit / d(ŵ or ẑ) carries 1/τ: the
        // scale goes on the small [V, D] factors, so each [chunk, V] block costs one fused product and one exp.
        var scale = gradOutput.div(Kept(unitEmbeddings.shape[0] * temperature));
        var scaledForWeights = unitEmbeddings.mul(scale);
        var probabilityWeightSum = zeros_like(unitEmbeddings);
        var weightGrad = empty_like(classWeights);
        for (long start = 0; start < classes; start += chunkSize)
        {
            using var scope = NewDisposeScope();
            long end = Math.Min(start + chunkSize, classes);
            var weights = classWeights.slice(0, start, end, 1);
            var norms = weights.norm(1, keepdim: true).clamp_min_(Kept(NormFloor));
            var unitWeights = weights.div(norms);
            var probabilitiesT = negativeLogSumExp.addmm(unitWeights, scaledEmbeddingsT).exp_();
            probabilityWeightSum.addmm_(probabilitiesT.t(), unitWeights);
            var chunkGrad = weightGrad.slice(0, start, end, 1);
            chunkGrad.addmm_(probabilitiesT, scaledForWeights, beta: 0);
            ThroughNormalizeInPlace(chunkGrad, unitWeights, norms);
        }
        // The −1 of each view's own class.
        var targetWeights = classWeights.index_select(0, targets);
        var targetNorms = targetWeights.norm(1, keepdim: true).clamp_min_(Kept(NormFloor));
        var targetUnitWeights = targetWeights.div(targetNorms);
        var embeddingGrad = probabilityWeightSum.sub_(targetUnitWeights).mul_(scale);
        weightGrad.index_add_(0, targets, ThroughNormalize(scaledForWeights, targetUnitWeights, targetNorms), alpha: Kept(-1));
        return new List<Tensor> { embeddingGrad, weightGrad, null!, null!, null! };
    }

    /// <summary>Gradient w.r.t. w of ŵ = w / ‖w‖ given the gradient w.r.t. ŵ: (g − ŵ (ŵ·g)) / ‖w‖.</summary>
    static Tensor ThroughNormalize(Tensor unitGrad, Tensor unitWeights, Tensor norms) =>
        ThroughNormalizeInPlace(unitGrad.clone(), unitWeights, norms);

    internal static Tensor ThroughNormalizeInPlace(Tensor unitGrad, Tensor unitWeights, Tensor norms) =>
        unitGrad.addcmul_(unitWeights, unitWeights.mul(unitGrad).sum(1, keepdim: true), value: Kept(-1)).div_(norms);

    static (Tensor UnitEmbeddings, Tensor ClassWeights, Tensor Targets, double Temperature, long ChunkSize) Unpack(object[] vars) =>
        ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (double)vars[3], (long)vars[4]);
}
