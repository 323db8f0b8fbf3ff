using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Models;

/// <summary>
/// Applies the networks' BatchNorm layers, either as they are (statistics of this process's batch) or synchronised
/// over the processes of a data-parallel run (<c>--sync-bn</c>): then the mean and variance are those of the global
/// batch, computed in two passes (sum, then squared deviations) so that they match one process's BatchNorm closely.
/// TorchSharp has no SyncBatchNorm; the layers stay plain BatchNorm modules, so checkpoints and exports do not change.
/// Every BatchNorm of a Conic network runs through <see cref="Apply"/>, never through the module's own forward, whose
/// batch count (<c>num_batches_tracked.add_(1, Kept(1))</c>) passes Scalars that a garbage collection can free during the call
/// (<see cref="Runtime.KeptScalars"/>): seen as "For integral input tensors, argument alpha must not be a floating
/// point number" at epoch 26 of a pretraining run.
/// </summary>
public static class BatchNorms
{
    static Func<Tensor, Tensor>? _sumAcrossProcesses;

    /// <summary>
    /// Until disposed, training-mode BatchNorm in this process uses statistics summed by <paramref name="sumAcrossProcesses"/>
    /// (a differentiable all-reduce).
    /// </summary>
    public static IDisposable Synchronize(Func<Tensor, Tensor> sumAcrossProcesses)
    {
        _sumAcrossProcesses = sumAcrossProcesses;
        return new Restore();
    }

    sealed class Restore : IDisposable
    {
        public void Dispose() => _sumAcrossProcesses = null;
    }

    /// <summary>A Sequential's layers in order, its BatchNorm layers through <see cref="Apply"/>.</summary>
    public static Tensor Sequence(Sequential layers, Tensor input) =>
        layers.children().Aggregate(input, (x, layer) => layer is BatchNorm norm ? Apply(norm, x) : ((nn.Module<Tensor, Tensor>)layer).call(x));

    /// <summary><paramref name="norm"/> applied to <paramref name="input"/> as its forward would (training or evaluation), with the batch count kept in Conic's Scalars and, when synchronised, statistics over every process.</summary>
    public static Tensor Apply(BatchNorm norm, Tensor input)
    {
        if (_sumAcrossProcesses is not { } sum || !norm.training) return Local(norm, input);
        long channels = input.shape[1];
        var reduced = Enumerable.Range(0, (int)input.dim()).Where(d => d != 1).Select(d => (long)d).ToArray();
        var broadcast = Enumerable.Repeat(1L, (int)input.dim()).ToArray();
        broadcast[1] = channels;
        long localCount = input.numel() / channels;
        var totals = sum(cat(new[] { input.sum(reduced), full(1, Kept((float)localCount), dtype: input.dtype, device: input.device) }));
        var count = totals[channels].item<float>();
        var mean = totals[..(int)channels].div(Kept(count));
        var centered = input.sub(mean.view(broadcast));
        var variance = sum(centered.pow(Kept(2)).sum(reduced)).div(Kept(count));
        var output = centered.mul(variance.add(Kept(norm.eps), Kept(1)).rsqrt().view(broadcast));
        if (norm.weight is not null) output = output.mul(norm.weight.view(broadcast)).add(norm.bias!.view(broadcast), Kept(1));
        if (norm.track_running_stats && norm.running_mean is not null)
        {
            using var noGrad = no_grad();
            double momentum = norm.momentum ?? 0.1;
            norm.running_mean.mul_(Kept(1 - momentum)).add_(mean.detach(), alpha: Kept(momentum));
            norm.running_var!.mul_(Kept(1 - momentum)).add_(variance.detach().mul(Kept(count / Math.Max(1, count - 1))), alpha: Kept(momentum));
            norm.num_batches_tracked?.add_(Kept(1), Kept(1));
        }
        return output;
    }

    /// <summary>What TorchSharp's BatchNorm forward computes, with kept Scalars.</summary>
    static Tensor Local(BatchNorm norm, Tensor input)
    {
        double averagingFactor = norm.momentum ?? 0.0;
        if (norm.training && norm.track_running_stats && norm.num_batches_tracked is { } batches)
        {
            batches.add_(Kept(1), Kept(1));
            // Without a momentum the running statistics are the cumulative average of the batches so far.
            if (norm.momentum is null) averagingFactor = 1.0 / batches.item<long>();
        }
        bool batchStatistics = norm.training || (norm.running_mean is null && norm.running_var is null);
        bool runningStatistics = !norm.training || norm.track_running_stats;
        return nn.functional.batch_norm(input, runningStatistics ? norm.running_mean : null, runningStatistics ? norm.running_var : null,
                                        norm.weight, norm.bias, batchStatistics, averagingFactor, norm.eps);
    }
}
