using Conic.Losses;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods.InstanceClassifiers;

/// <summary>
/// The classifier with sampled negatives: each view is classified among the batch's rows and K rows drawn uniformly
/// from the other instances (a sampled softmax, <see cref="ConicLosses.SampledInstanceClassification"/>), and only
/// those rows are updated, by the classifier itself (<see cref="LazyRowUpdate"/>, with the momentum the others missed).
/// </summary>
/// <param name="momentum">[N, D] the rows' momentum.</param>
/// <param name="lastStep">[N] int64: the step that last updated each row (-1: never).</param>
/// <param name="steps">[1] int64: the classifier's updates so far.</param>
public sealed class SampledClassifier(Parameter rows, ConicOptions options, Tensor momentum, Tensor lastStep, Tensor steps) : InstanceClassifier(rows, options)
{
    /// <summary>This step's drawn rows, their weights as a leaf whose gradient the update applies, and the negatives' logit offset.</summary>
    sealed record Draw(Tensor Rows, Tensor Weights, double Offset) : IDisposable
    {
        public void Dispose()
        {
            Rows.Dispose();
            Weights.Dispose();
        }
    }

    Draw? _draw;

    /// <inheritdoc/>
    public override bool OptimizerUpdatesRows => false;

    /// <summary>
    /// The batch's rows and K others drawn without replacement (all others when there are no more than K), as a leaf copy
    /// whose gradient <see cref="AfterOptimizerStep"/> applies to those rows only.
    /// </summary>
    public override Tensor Loss(Tensor embeddings, Tensor targets, TrainingBatch batch)
    {
        var own = batch.InstanceIndices;
        long size = own.shape[0], instances = Rows.shape[0], others = instances - size;
        var isOwn = zeros(instances, dtype: ScalarType.Bool, device: own.device).index_fill_(0, own, Kept(true));
        Tensor negatives;
        if (others <= Options.Negatives)
        {
            negatives = isOwn.logical_not().nonzero().squeeze(1);
        }
        else
        {
            // Enough candidates that K remain after dropping the batch's own rows.
            var candidates = randperm(instances, generator: batch.Random, device: own.device)[..(int)(Options.Negatives + size)];
            negatives = candidates.index_select(0, isOwn.index_select(0, candidates).logical_not().nonzero().squeeze(1))[..(int)Options.Negatives];
        }
        var drawn = cat(new[] { own, negatives }, 0);
        var weights = Rows.detach().index_select(0, drawn).requires_grad_(true);
        double offset = negatives.shape[0] < others ? Math.Log((double)others / negatives.shape[0]) : 0;
        _draw?.Dispose();
        _draw = new Draw(drawn.DetachFromDisposeScope(), weights.DetachFromDisposeScope(), offset);
        var positions = Positions(size, own.device);
        return ConicLosses.SampledInstanceClassification(embeddings, weights, cat(new[] { positions, positions }, 0), Options.Temperature, size, offset);
    }

    /// <summary>The small crops classified among this step's drawn rows, detached.</summary>
    public override Tensor SmallCropLoss(Tensor embeddings, Tensor targets, int crops)
    {
        var draw = _draw ?? throw new InvalidOperationException("small crops are classified after the step's main views");
        long size = embeddings.shape[0] / crops;
        return ConicLosses.SampledInstanceClassification(embeddings, draw.Weights.detach(), cat(Enumerable.Repeat(Positions(size, embeddings.device), crops).ToArray(), 0),
                                                         Options.Temperature, size, draw.Offset);
    }

    static Tensor Positions(long size, Device device) => arange(Kept(0), Kept(size), Kept(1), dtype: ScalarType.Int64, device: device);

    /// <inheritdoc/>
    public override void AfterOptimizerStep(double learningRate)
    {
        if (_draw is not { } draw) return;
        using (draw)
        {
            _draw = null;
            long step = steps.item<long>();
            var gradient = draw.Weights.grad ?? zeros_like(draw.Weights);
            LazyRowUpdate.Apply(Rows, momentum, lastStep, draw.Rows, gradient, step, learningRate * Options.ClassifierLearningRateScale,
                                Options.ClassifierMomentum, Options.ClassifierWeightDecay);
            using (no_grad()) steps.add_(Kept(1), Kept(1));
        }
    }
}
