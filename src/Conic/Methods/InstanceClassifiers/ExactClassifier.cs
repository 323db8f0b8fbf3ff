using Conic.Losses;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Methods.InstanceClassifiers;

/// <summary>
/// The classifier over all N rows in one process: through the full logits matrix while it is small, else chunked over
/// the classes (memory O(views × chunk)); both give the same loss and gradients (<see cref="ClassifierHead"/>).
/// </summary>
public sealed class ExactClassifier(Parameter rows, ConicOptions options) : InstanceClassifier(rows, options)
{
    /// <summary>
    /// Auto materialises the logits while they are small (up to this many floats, 32 MB): there one big product beats
    /// the chunked head's extra pass; beyond it the chunked head wins and its memory stays flat (bench/, docs/performance).
    /// </summary>
    public const long MaterializedLogitsLimit = 1L << 23;

    /// <inheritdoc/>
    public override Tensor Loss(Tensor embeddings, Tensor targets, TrainingBatch batch) => Materialize(targets.shape[0])
        ? ConicLosses.InstanceClassificationMaterialized(embeddings, Rows, targets, Options.Temperature)
        : ConicLosses.InstanceClassification(embeddings, Rows, targets, Options.Temperature, Options.ClassifierChunk);

    /// <inheritdoc/>
    public override Tensor SmallCropLoss(Tensor embeddings, Tensor targets, int crops) =>
        ConicLosses.InstanceClassification(embeddings, Rows.detach(), targets, Options.Temperature, Options.ClassifierChunk);

    bool Materialize(long views) => Options.ClassifierHead switch
    {
        ClassifierHead.Materialized => true,
        ClassifierHead.Chunked => false,
        _ => views * Rows.shape[0] <= MaterializedLogitsLimit,
    };
}
