using Conic.Methods;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Training;

/// <summary>
/// SGD with momentum and coupled weight decay (PyTorch's SGD without dampening or Nesterov), per parameter group,
/// optionally with LARS (You et al. 2017): each weight matrix's step is scaled by η·‖w‖ / (‖g‖ + wd·‖w‖); biases and
/// BatchNorm parameters (1-D) are not adapted, as in SimCLR. Written out so that its momentum buffers are plain
/// tensors the checkpoint saves and restores exactly.
/// </summary>
public sealed class MomentumSgd : IOptimizer
{
    readonly IReadOnlyList<ParameterGroup> _groups;
    readonly Tensor[][] _buffers;
    readonly double _momentum;
    readonly double? _larsEta;

    /// <param name="larsEta">LARS trust coefficient; null for plain SGD.</param>
    public MomentumSgd(IReadOnlyList<ParameterGroup> groups, double momentum, double? larsEta = null)
    {
        _groups = groups;
        _momentum = momentum;
        _larsEta = larsEta;
        _buffers = groups.Select(g => g.Parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray()).ToArray();
    }

    /// <inheritdoc/>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers() =>
        _groups.SelectMany((g, gi) => _buffers[gi].Select((b, pi) => ($"{g.Name}.{pi}", b)));

    /// <inheritdoc/>
    public void ZeroGrad()
    {
        foreach (var group in _groups)
        foreach (var parameter in group.Parameters)
            parameter.grad?.zero_();
    }

    /// <summary>One step at <paramref name="learningRate"/> (times each group's scale), with weight decay and momentum (LARS trust ratios when set).</summary>
    public void Step(double learningRate)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (group, g, i, parameter, gradient, rate) in OptimizerSteps.WithGradients(_groups, learningRate))
        {
            var direction = group.WeightDecay == 0 ? gradient : gradient.add(parameter, alpha: Kept(group.WeightDecay));
            if (_larsEta is double eta && parameter.dim() > 1)
            {
                var weightNorm = parameter.norm();
                var trust = weightNorm.mul(Kept(eta)).div(gradient.norm().add(weightNorm.mul(Kept(group.WeightDecay)), Kept(1)));
                // A zero norm (fresh zero weights or a vanishing gradient) leaves the step unscaled.
                trust = where(trust.isfinite().logical_and(trust.gt(Kept(0))), trust, ones_like(trust));
                direction = direction.mul(trust);
            }
            _buffers[g][i].mul_(Kept(_momentum)).add_(direction, Kept(1));
            parameter.add_(_buffers[g][i], alpha: Kept(-rate));
        }
    }

    /// <summary>Frees the momentum buffers.</summary>
    public void Dispose()
    {
        foreach (var buffer in _buffers.SelectMany(b => b)) buffer.Dispose();
    }
}
