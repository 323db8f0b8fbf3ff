using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>Linear - BatchNorm - ReLU - Linear: the MLP head of MoCo v2 / SimCLR / PIC. [B, in] to [B, out].</summary>
public sealed class ProjectionHead : Module<Tensor, Tensor>
{
    readonly Sequential layers;

    /// <summary>Linear (no bias), BatchNorm, ReLU, Linear: <paramref name="inputDim"/> → <paramref name="hiddenDim"/> → <paramref name="outputDim"/>.</summary>
    public ProjectionHead(int inputDim, int hiddenDim, int outputDim) : base(nameof(ProjectionHead))
    {
        layers = Sequential(
            ("0", Linear(inputDim, hiddenDim, hasBias: false)),
            ("1", BatchNorm1d(hiddenDim)),
            ("2", ReLU()),
            ("3", Linear(hiddenDim, outputDim)));
        RegisterComponents();
    }

    /// <summary>The embeddings [B, outputDim] of features [B, inputDim].</summary>
    public override Tensor forward(Tensor input) => BatchNorms.Sequence(layers, input);
}
