using Conic.Configuration;
using Conic.Distributed;
using Conic.Losses;
using Conic.Models;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>SimCLR (Chen et al. 2020): NT-Xent over the 2B views of a batch.</summary>
public sealed record SimclrOptions : MethodSettings
{
    /// <summary>0.5, the paper's CIFAR-10 value.</summary>
    public double Temperature { get; init; } = 0.5;
    /// <summary>Size of the projected embedding.</summary>
    public int EmbeddingDim { get; init; } = 128;
}

/// <summary>SimCLR (Chen et al. 2020): backbone → MLP projection, NT-Xent over the 2B views (LARS: --optimizer lars).</summary>
public sealed class SimclrMethod : SslMethod
{
    /// <summary>SimCLR as the CLI, config files and the registry know it.</summary>
    public static readonly MethodDefinition Definition = MethodDefinition.Of("simclr",
        "SimCLR (Chen et al. 2020): NT-Xent over the two views of every image in the batch", new SimclrOptions(),
        new Settings<SimclrOptions>()
            .Number("--simclr-temperature", "T", "NT-Xent temperature", o => o.Temperature, (o, v) => o with { Temperature = v }, ValueRange.Temperature)
            .Integer("--simclr-embedding-dim", "D", "size of the projected embeddings", o => o.EmbeddingDim, (o, v) => o with { EmbeddingDim = v }, ValueRange.AtLeast(1)),
        (backbone, _, _, options) => new SimclrMethod(backbone, options));

    readonly Backbone backbone;
    readonly ProjectionHead projector;
    readonly SimclrOptions _options;

    /// <summary>SimCLR on <paramref name="backbone"/> with an MLP projector.</summary>
    public SimclrMethod(Backbone backbone, SimclrOptions options) : base("simclr")
    {
        _options = options;
        this.backbone = backbone;
        projector = new ProjectionHead(backbone.FeatureDim, 4 * backbone.FeatureDim, options.EmbeddingDim);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;

    /// <inheritdoc/>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        int size = (int)batch.InstanceIndices.shape[0];
        var z = projector.call(backbone.call(BothViews(batch)));
        // Every other image of the global batch is a negative: the ranks' embeddings are gathered, with gradient.
        var loss = ContrastiveLosses.NtXent(Collectives.GatherAcross(Processes, z[..size]), Collectives.GatherAcross(Processes, z[size..]), _options.Temperature);
        return new MethodLoss(loss, new[] { new LossTerm("nt_xent", loss) });
    }
}
