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
