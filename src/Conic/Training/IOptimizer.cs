using Conic.Methods;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>An optimiser the trainer steps (<see cref="MomentumSgd"/>, <see cref="Adam"/>); its state is plain tensors a checkpoint saves and restores exactly.</summary>
public interface IOptimizer : IDisposable
{
    /// <summary>Zeroes every parameter's gradient.</summary>
    void ZeroGrad();
    /// <summary>One update at <paramref name="learningRate"/> (times each parameter group's scale).</summary>
    void Step(double learningRate);
    /// <summary>
    /// The optimiser's state in a fixed order, for checkpoints; a parameter's buffers are named after its group
    /// (GROUP.INDEX...), so that a row-sharded group's buffers shard with it.
    /// </summary>
    IEnumerable<(string Name, Tensor Buffer)> NamedBuffers();
}

/// <summary>The parameters an optimiser step updates.</summary>
static class OptimizerSteps
{
    /// <summary>
    /// Every parameter of <paramref name="groups"/> that has a gradient, with its group, its place in the group (for
    /// per-parameter state) and its rate: <paramref name="learningRate"/> times the group's scale.
    /// </summary>
    public static IEnumerable<(ParameterGroup Group, int GroupIndex, int Index, Parameter Parameter, Tensor Gradient, double Rate)> WithGradients(
        IReadOnlyList<ParameterGroup> groups, double learningRate)
    {
        for (int g = 0; g < groups.Count; g++)
        for (int i = 0; i < groups[g].Parameters.Count; i++)
            if (groups[g].Parameters[i].grad is { } gradient)
                yield return (groups[g], g, i, groups[g].Parameters[i], gradient, learningRate * groups[g].LearningRateScale);
    }
}
