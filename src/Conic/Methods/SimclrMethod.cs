using Conic.Losses;
using Conic.Models;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>SimCLR (Chen et al. 2020): backbone → MLP projection, NT-Xent over the 2B views (LARS: --optimizer lars).</summary>
public sealed class SimclrMethod : SslMethod
{
    readonly ResNet backbone;
    readonly ProjectionHead projector;
    readonly SimclrOptions _options;

    public SimclrMethod(ResNet backbone, SimclrOptions options) : base("simclr")
    {
        _options = options;
        this.backbone = backbone;
        projector = new ProjectionHead(backbone.FeatureDim, 4 * backbone.FeatureDim, options.EmbeddingDim);
        RegisterComponents();
    }

    public override ResNet Backbone => backbone;

    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        int size = (int)batch.InstanceIndices.shape[0];
        var z = projector.call(backbone.call(BothViews(batch)));
        var loss = ContrastiveLosses.NtXent(z[..size], z[size..], _options.Temperature);
        return new MethodLoss(loss, new[] { new LossTerm("nt_xent", loss) });
    }
}
