using static TorchSharp.torch;
using static TorchSharp.torch.autograd;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Losses;

/// <summary>
/// The instance-classification cross-entropy with the N × D classifier split by rows over the processes of a
/// data-parallel run (PartialFC's layout, Deng et al. 2021, without its sampling: the softmax stays exact). Every
/// process sees all V views of the global batch and only its own rows W_r; the softmax over all N classes needs only
/// two sums over the processes, of each view's exp-sum over its rows and of the target logit (held by the process
/// that owns the target's row), with a shift that is the same everywhere: 1/τ, since cosine logits are at most 1/τ,
/// or the maximum over all processes where exp(−2/τ) could underflow. W is never communicated; memory per process is
/// N·D/P. With one process this equals <see cref="ConicLosses.InstanceClassification"/>.
/// </summary>
public static class ShardedInstanceClassification
{
    /// <param name="embeddings">[V, D], the whole global batch (gathered with gradient), any norm.</param>
    /// <param name="rows">[n, D], this process's rows: classes <paramref name="firstRow"/> .. firstRow + n − 1.</param>
    /// <param name="targets">[V] int64, each view's class in 0..N−1.</param>
    /// <param name="sumAcross">A differentiable sum over the processes (identity for one process).</param>
    /// <param name="maxAcross">The maximum over the processes, without gradient.</param>
    /// <returns>Scalar: the mean over the V views, the same on every process.</returns>
    public static Tensor Loss(Tensor embeddings, Tensor rows, Tensor targets, long firstRow, double temperature, long chunkSize,
                              Func<Tensor, Tensor> sumAcross, Func<Tensor, Tensor> maxAcross)
    {
        using var scope = NewDisposeScope();
        var unit = F.normalize(embeddings, dim: 1);
        Tensor shift;
        if (2 / temperature <= 60)
        {
            shift = full(unit.shape[0], Kept(1 / temperature), dtype: unit.dtype, device: unit.device);
        }
        else
        {
            using var noGrad = no_grad();
            shift = maxAcross(ShardExpSum.RowMaximum(unit.div(Kept(temperature)), rows, chunkSize));
        }
        var expSum = sumAcross(ShardExpSum.apply(unit, rows, shift, temperature, chunkSize));
        long count = rows.shape[0];
        var mine = targets.ge(Kept(firstRow)).logical_and(targets.lt(Kept(firstRow + count)));
        var local = targets.sub(Kept(firstRow)).clamp(Kept(0), Kept(Math.Max(0, count - 1)));
        var ownRows = count > 0 ? F.normalize(rows.index_select(0, local), dim: 1) : zeros_like(unit);
        var ownLogits = where(mine, unit.mul(ownRows).sum(1).div(Kept(temperature)), zeros_like(shift));
        var targetLogits = sumAcross(ownLogits);
        return expSum.log().add(shift, Kept(1)).sub(targetLogits).mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Σ_j exp(ẑ_v · ŵ_j / τ − shift_v) over this process's rows, chunk by chunk forward and backward (the [V, n]
    /// logits never exist whole), differentiated into the unit embeddings and the raw rows.
    /// </summary>
    sealed class ShardExpSum : SingleTensorFunction<ShardExpSum>
    {
        public override string Name => nameof(ShardExpSum);

        public static Tensor RowMaximum(Tensor scaledUnit, Tensor rows, long chunkSize)
        {
            var maximum = full(scaledUnit.shape[0], Kept(double.NegativeInfinity), dtype: scaledUnit.dtype, device: scaledUnit.device);
            foreach (var (start, end) in Chunks(rows.shape[0], chunkSize))
            {
                using var scope = NewDisposeScope();
                maximum.copy_(maximum.maximum(scaledUnit.matmul(F.normalize(rows.slice(0, start, end, 1), dim: 1).t()).amax(1)));
            }
            return maximum;
        }

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (unit, rows, shift, temperature, chunkSize) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (double)vars[3], (long)vars[4]);
            var scaledT = unit.div(Kept(temperature)).t().contiguous();
            var negativeShift = shift.neg().unsqueeze(0);
            var sum = zeros(unit.shape[0], dtype: unit.dtype, device: unit.device);
            foreach (var (start, end) in Chunks(rows.shape[0], chunkSize))
            {
                using var scope = NewDisposeScope();
                sum.add_(negativeShift.addmm(F.normalize(rows.slice(0, start, end, 1), dim: 1), scaledT).exp_().sum(dim: 0), Kept(1));
            }
            ctx.save_for_backward([unit, rows, shift]);
            ctx.save_data("temperature", temperature);
            ctx.save_data("chunk", chunkSize);
            return sum;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (unit, rows, shift) = (saved[0], saved[1], saved[2]);
            double temperature = (double)ctx.get_data("temperature");
            long chunkSize = (long)ctx.get_data("chunk");
            var scaledT = unit.div(Kept(temperature)).t().contiguous();
            var negativeShift = shift.neg().unsqueeze(0);
            // d sum_v / d logit_vj = exp(logit_vj − shift_v); the output gradient and 1/τ go on the small [V, D] side.
            var weightedUnit = unit.mul(gradOutput.div(Kept(temperature)).unsqueeze(1));
            var unitGrad = zeros_like(unit);
            var rowsGrad = empty_like(rows);
            foreach (var (start, end) in Chunks(rows.shape[0], chunkSize))
            {
                using var scope = NewDisposeScope();
                var chunk = rows.slice(0, start, end, 1);
                var norms = chunk.norm(1, keepdim: true).clamp_min_(Kept(1e-12));
                var unitRows = chunk.div(norms);
                var expT = negativeShift.addmm(unitRows, scaledT).exp_(); // [chunk, V]
                unitGrad.addmm_(expT.t().mul(gradOutput.div(Kept(temperature)).unsqueeze(1)), unitRows);
                var chunkGrad = rowsGrad.slice(0, start, end, 1);
                chunkGrad.addmm_(expT, weightedUnit, beta: 0);
                ChunkedInstanceClassification.ThroughNormalizeInPlace(chunkGrad, unitRows, norms);
            }
            return [unitGrad, rowsGrad, null!, null!, null!];
        }

        static IEnumerable<(long Start, long End)> Chunks(long rows, long chunkSize)
        {
            for (long start = 0; start < rows; start += chunkSize) yield return (start, Math.Min(start + chunkSize, rows));
        }
    }
}
