using Conic.Methods;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Training;

/// <summary>
/// Adam (Kingma and Ba 2015) as PyTorch defines it, per parameter group: weight decay added to the gradient (optim.Adam),
/// or decoupled from it (AdamW, Loshchilov and Hutter 2019: each weight shrunk by lr·wd before the update, as
/// optim.AdamW) — the optimiser ViTs and ConvNeXts are trained with. Ours rather than TorchSharp's, which hands its
/// numbers to libtorch as Scalars a garbage collection can free mid-call (see KeptScalars), and whose state a
/// checkpoint could not hold: here the moments and the step count are plain tensors.
/// </summary>
public sealed class Adam : IOptimizer
{
    readonly IReadOnlyList<ParameterGroup> _groups;
    readonly Tensor[][] _firstMoments, _secondMoments;
    readonly Tensor _steps;
    readonly bool _decoupled;
    readonly double _beta1, _beta2, _epsilon;

    /// <param name="groups">Parameters with their learning-rate scale and weight decay.</param>
    /// <param name="decoupledWeightDecay">AdamW's decay (true) or Adam's (false).</param>
    public Adam(IReadOnlyList<ParameterGroup> groups, bool decoupledWeightDecay, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
    {
        _groups = groups;
        (_decoupled, _beta1, _beta2, _epsilon) = (decoupledWeightDecay, beta1, beta2, epsilon);
        _firstMoments = groups.Select(g => g.Parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray()).ToArray();
        _secondMoments = groups.Select(g => g.Parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray()).ToArray();
        var device = groups.SelectMany(g => g.Parameters).First().device;
        _steps = zeros(1, dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
    }

    /// <summary>Adam with weight decay added to the gradient, over one group (the linear probe's).</summary>
    public Adam(IEnumerable<Parameter> parameters, double weightDecay)
        : this([new ParameterGroup("all", parameters.ToArray(), 1, weightDecay)], decoupledWeightDecay: false)
    {
    }

    /// <inheritdoc/>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers()
    {
        for (int g = 0; g < _groups.Count; g++)
        for (int i = 0; i < _firstMoments[g].Length; i++)
        {
            yield return ($"{_groups[g].Name}.{i}.first", _firstMoments[g][i]);
            yield return ($"{_groups[g].Name}.{i}.second", _secondMoments[g][i]);
        }
        yield return ("steps", _steps);
    }

    /// <inheritdoc/>
    public void ZeroGrad()
    {
        foreach (var parameter in _groups.SelectMany(g => g.Parameters)) parameter.grad?.zero_();
    }

    /// <inheritdoc/>
    public void Step(double learningRate)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long steps = _steps.item<long>() + 1;
        _steps.fill_(Kept(steps));
        double firstCorrection = 1 - Math.Pow(_beta1, steps), secondCorrection = 1 - Math.Pow(_beta2, steps);
        foreach (var (group, g, i, parameter, gradient, rate) in OptimizerSteps.WithGradients(_groups, learningRate))
        {
            var direction = _decoupled || group.WeightDecay == 0 ? gradient : gradient.add(parameter, alpha: Kept(group.WeightDecay));
            if (_decoupled && group.WeightDecay != 0) parameter.mul_(Kept(1 - rate * group.WeightDecay));
            _firstMoments[g][i].mul_(Kept(_beta1)).add_(direction, alpha: Kept(1 - _beta1));
            _secondMoments[g][i].mul_(Kept(_beta2)).addcmul_(direction, direction, Kept(1 - _beta2));
            var denominator = _secondMoments[g][i].sqrt().div_(Kept(Math.Sqrt(secondCorrection))).add_(Kept(_epsilon), Kept(1));
            parameter.addcdiv_(_firstMoments[g][i], denominator, Kept(-rate / firstCorrection));
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var moment in _firstMoments.Concat(_secondMoments).SelectMany(m => m)) moment.Dispose();
        _steps.Dispose();
    }
}
