using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Methods;

/// <summary>
/// An exponential moving average of an online network (MoCo's key encoder, BYOL's target): starts as a copy, never
/// receives gradients, and after each step moves towards the online weights: θ_t ← m·θ_t + (1 − m)·θ_o.
/// BatchNorm running statistics are its own (it runs in training mode on its own batches).
/// </summary>
public sealed class MomentumEncoder : Module<Tensor, Tensor>
{
    readonly Module<Tensor, Tensor> network;

    /// <param name="online">The network to follow.</param>
    /// <param name="copy">A freshly built network of the same architecture; its weights are overwritten.</param>
    public MomentumEncoder(Module<Tensor, Tensor> online, Module<Tensor, Tensor> copy) : base(nameof(MomentumEncoder))
    {
        network = copy;
        RegisterComponents();
        using var noGrad = no_grad();
        foreach (var ((_, target), (_, source)) in network.named_parameters().Zip(online.named_parameters()))
        {
            target.copy_(source);
            target.requires_grad = false;
        }
    }

    public override Tensor forward(Tensor input)
    {
        using var noGrad = no_grad();
        return network.call(input);
    }

    /// <param name="online">The network given to the constructor (not stored: it would register as a submodule).</param>
    public void Update(Module<Tensor, Tensor> online, double momentum)
    {
        using var noGrad = no_grad();
        foreach (var ((_, target), (_, source)) in network.named_parameters().Zip(online.named_parameters()))
            target.mul_(momentum).add_(source, alpha: 1 - momentum);
    }

    /// <summary>BYOL's schedule: from <paramref name="baseMomentum"/> at the start to 1 at the end, along a cosine.</summary>
    public static double CosineMomentum(double baseMomentum, double progress) =>
        1 - (1 - baseMomentum) * (Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)) + 1) / 2;
}
