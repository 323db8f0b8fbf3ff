using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Training;

/// <summary>
/// Adam (Kingma and Ba 2015) as PyTorch defines it, weight decay added to the gradient. Ours rather than TorchSharp's
/// optim.Adam, which hands its numbers to libtorch as Scalars a garbage collection can free mid-call (see KeptScalars).
/// </summary>
sealed class Adam : IDisposable
{
    readonly Parameter[] _parameters;
    readonly Tensor[] _firstMoments, _secondMoments;
    readonly double _weightDecay, _beta1, _beta2, _epsilon;
    long _steps;

    public Adam(IEnumerable<Parameter> parameters, double weightDecay, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
    {
        _parameters = parameters.ToArray();
        (_weightDecay, _beta1, _beta2, _epsilon) = (weightDecay, beta1, beta2, epsilon);
        _firstMoments = _parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        _secondMoments = _parameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
    }

    public void ZeroGrad()
    {
        foreach (var parameter in _parameters) parameter.grad?.zero_();
    }

    public void Step(double learningRate)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        _steps++;
        double firstCorrection = 1 - Math.Pow(_beta1, _steps), secondCorrection = 1 - Math.Pow(_beta2, _steps);
        for (int i = 0; i < _parameters.Length; i++)
        {
            var gradient = _parameters[i].grad;
            if (gradient is null) continue;
            if (_weightDecay != 0) gradient = gradient.add(_parameters[i], alpha: Kept(_weightDecay));
            _firstMoments[i].mul_(Kept(_beta1)).add_(gradient, alpha: Kept(1 - _beta1));
            _secondMoments[i].mul_(Kept(_beta2)).addcmul_(gradient, gradient, Kept(1 - _beta2));
            var denominator = _secondMoments[i].sqrt().div_(Kept(Math.Sqrt(secondCorrection))).add_(Kept(_epsilon), Kept(1));
            _parameters[i].addcdiv_(_firstMoments[i], denominator, Kept(-learningRate / firstCorrection));
        }
    }

    public void Dispose()
    {
        foreach (var moment in _firstMoments.Concat(_secondMoments)) moment.Dispose();
    }
}
