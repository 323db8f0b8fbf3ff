using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Methods.InstanceClassifiers;

/// <summary>
/// ConIC's learned N-way instance classifier W [N, D] as its loss sees it: one row per training image, and each view's
/// class is its image. Three strategies compute the same softmax cross-entropy: <see cref="ExactClassifier"/> (all N
/// rows), <see cref="SampledClassifier"/> (the batch's rows and K drawn others; it steps those rows itself) and
/// <see cref="ShardedClassifier"/> (the rows split over data-parallel processes). The rows and their state are
/// <see cref="ConicMethod"/>'s tensors, so checkpoints name them the same whichever strategy trains them.
/// </summary>
public abstract class InstanceClassifier(Parameter rows, ConicOptions options)
{
    /// <summary>The classifier's rows W (this process's block when they are split).</summary>
    protected Parameter Rows { get; } = rows;
    /// <summary>ConIC's settings: temperature, chunk size, the classifier's learning-rate scale.</summary>
    protected ConicOptions Options { get; } = options;

    /// <summary>The mean cross-entropy of the two main views' embeddings [2B, D], each view's class its image (<paramref name="targets"/> [2B]).</summary>
    public abstract Tensor Loss(Tensor embeddings, Tensor targets, TrainingBatch batch);

    /// <summary>
    /// The mean cross-entropy of <paramref name="crops"/> small crops of each image [crops·B, D], through the rows
    /// detached, so that they train the network and not the rows; called after <see cref="Loss"/> in the same step.
    /// </summary>
    public abstract Tensor SmallCropLoss(Tensor embeddings, Tensor targets, int crops);

    /// <summary>Whether the network's optimiser steps the rows; false when <see cref="AfterOptimizerStep"/> does.</summary>
    public virtual bool OptimizerUpdatesRows => true;

    /// <summary>The classifier's own update after the optimiser's step (at the network's learning rate).</summary>
    public virtual void AfterOptimizerStep(double learningRate)
    {
    }

    /// <summary>
    /// Of the global batch's <paramref name="images"/> and a value for each, those whose rows this process holds, as
    /// row numbers within <see cref="Rows"/>: all of them, unless the rows are split over processes.
    /// </summary>
    public virtual (Tensor Rows, Tensor Values) Held(Tensor images, Tensor values) => (images, values);
}
