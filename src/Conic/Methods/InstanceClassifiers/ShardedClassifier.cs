using Conic.Distributed;
using Conic.Losses;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods.InstanceClassifiers;

/// <summary>
/// The classifier split by rows over data-parallel processes: each holds its block of N/P rows (and their optimiser
/// state) and classifies the global batch's views with the exact softmax across the blocks
/// (<see cref="ShardedInstanceClassification"/>).
/// </summary>
/// <param name="rows">This process's block of the rows.</param>
public sealed class ShardedClassifier(Parameter rows, ConicOptions options, ProcessGroup processes, RowShard shard) : InstanceClassifier(rows, options)
{
    /// <inheritdoc/>
    public override Tensor Loss(Tensor embeddings, Tensor targets, TrainingBatch batch) => Classify(embeddings, Rows, targets);

    /// <inheritdoc/>
    public override Tensor SmallCropLoss(Tensor embeddings, Tensor targets, int crops) => Classify(embeddings, Rows.detach(), targets);

    Tensor Classify(Tensor embeddings, Tensor block, Tensor targets)
    {
        var allEmbeddings = Collectives.GatherAcross(processes, embeddings);
        var allTargets = Collectives.GatherConstant(processes, targets);
        long chunk = Options.ClassifierChunk > 0 ? Options.ClassifierChunk : ConicLosses.AutomaticChunkSize(allEmbeddings.shape[0]);
        return ShardedInstanceClassification.Loss(allEmbeddings, block, allTargets, shard.Start, Options.Temperature, chunk,
                                                  x => Collectives.SumAcross(processes, x), x => Collectives.MaximumAcross(processes, x));
    }

    /// <summary>Every process sees the global batch's images and keeps those in its block.</summary>
    public override (Tensor Rows, Tensor Values) Held(Tensor images, Tensor values)
    {
        var allImages = Collectives.GatherConstant(processes, images);
        var allValues = Collectives.GatherConstant(processes, values);
        var inBlock = allImages.ge(Kept(shard.Start)).logical_and(allImages.lt(Kept(shard.Start + shard.Count))).nonzero().squeeze(1);
        return (allImages.index_select(0, inBlock).sub(Kept(shard.Start)), allValues.index_select(0, inBlock));
    }
}
