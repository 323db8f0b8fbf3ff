using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods;

/// <summary>
/// An exponential moving average of an online network (MoCo's key encoder, BYOL's target): starts as a copy, never
/// receives gradients, and after each step moves towards the online weights: θ_t ← m·θ_t + (1 − m)·θ_o.
/// The online network may be a chain of modules (backbone, then head); the copy runs them in order. BatchNorm
/// running statistics are its own (it runs in training mode on its own batches).
/// </summary>
public sealed class MomentumEncoder : Module<Tensor, Tensor>
{
    readonly ModuleList<Module<Tensor, Tensor>> stages;

    /// <param name="pairs">Each online module with a freshly built module of the same architecture (its weights are overwritten).</param>
    public MomentumEncoder(params (Module<Tensor, Tensor> Online, Module<Tensor, Tensor> Copy)[] pairs) : base(nameof(MomentumEncoder))
    {
        stages = ModuleList(pairs.Select(p => p.Copy).ToArray());
        RegisterComponents();
        using var noGrad = no_grad();
        foreach (var (target, source) in Pairs(pairs.Select(p => p.Online)))
        {
            target.copy_(source);
            target.requires_grad = false;
        }
    }

    /// <summary>The momentum copy's output for <paramref name="input"/>, without gradient.</summary>
    public override Tensor forward(Tensor input)
    {
        using var noGrad = no_grad();
        var x = input;
        foreach (var stage in stages) x = stage.call(x);
        return x;
    }

    /// <param name="online">The online modules given to the constructor, in order (not stored: they would register as submodules).</param>
    public void Update(double momentum, params Module<Tensor, Tensor>[] online)
    {
        using var noGrad = no_grad();
        foreach (var (target, source) in Pairs(online))
            target.mul_(Kept(momentum)).add_(source, alpha: Kept(1 - momentum));
    }

    IEnumerable<(Parameter Target, Parameter Source)> Pairs(IEnumerable<Module<Tensor, Tensor>> online) =>
        stages.SelectMany(s => s.parameters()).Zip(online.SelectMany(o => o.parameters()));

    /// <summary>BYOL's schedule: from <paramref name="baseMomentum"/> at the start to 1 at the end, along a cosine.</summary>
    public static double CosineMomentum(double baseMomentum, double progress) =>
        1 - (1 - baseMomentum) * (Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)) + 1) / 2;
}
