using Conic.Configuration;
using Conic.Distributed;
using Conic.Losses;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods;

/// <summary>
/// VICReg's settings. The loss weights are the paper's (25, 25, 1); the expander is 2,048 wide on CIFAR in
/// solo-learn and 8,192 on ImageNet, here 4x the backbone's features (512 at width 16) for a CPU budget.
/// </summary>
public sealed record VicregOptions : MethodSettings
{
    /// <summary>λ: weight of the invariance term (mean squared distance between the two views' embeddings).</summary>
    public double InvarianceWeight { get; init; } = 25;
    /// <summary>μ: weight of the variance term (hinge keeping each dimension's standard deviation at 1 or above).</summary>
    public double VarianceWeight { get; init; } = 25;
    /// <summary>ν: weight of the covariance term (squared off-diagonal covariances, decorrelating dimensions).</summary>
    public double CovarianceWeight { get; init; } = 1;
    /// <summary>Width of the expander's hidden layers and of its output; 0 means four times the backbone's features.</summary>
    public int ExpanderDim { get; init; }
}

/// <summary>
/// VICReg (Bardes, Ponce and LeCun 2022): an expander MLP (three linear layers, BatchNorm and ReLU between) maps both
/// views' features to embeddings; the loss pulls the two views together (invariance) while each batch keeps every
/// embedding dimension spread (variance) and the dimensions decorrelated (covariance). No negatives, no momentum
/// encoder, no stop-gradient.
/// </summary>
public sealed class VicregMethod : SslMethod
{
    /// <summary>LARS at lr 0.3 with weight decay 1e-4, solo-learn's CIFAR recipe.</summary>
    public static readonly MethodDefinition Definition = MethodDefinition.Of("vicreg",
        "VICReg (Bardes et al. 2022): invariance, variance and covariance terms on expanded embeddings; no negatives", new VicregOptions(),
        new Settings<VicregOptions>()
            .Number("--vicreg-invariance", "W", "weight of the invariance term", o => o.InvarianceWeight, (o, v) => o with { InvarianceWeight = v },
                    ValueRange.NonNegative)
            .Number("--vicreg-variance", "W", "weight of the variance term", o => o.VarianceWeight, (o, v) => o with { VarianceWeight = v },
                    ValueRange.NonNegative)
            .Number("--vicreg-covariance", "W", "weight of the covariance term", o => o.CovarianceWeight, (o, v) => o with { CovarianceWeight = v },
                    ValueRange.NonNegative)
            .Integer("--vicreg-expander-dim", "D", "width of the expander's layers; 0 = 4 x feature width", o => o.ExpanderDim,
                     (o, v) => o with { ExpanderDim = v }, ValueRange.NonNegative),
        (backbone, _, _, options) => new VicregMethod(backbone, options),
        new TrainingDefaults(0.3, OptimizerKind.Lars, 1e-4));

    readonly Backbone backbone;
    readonly Sequential expander;
    readonly VicregOptions _options;

    /// <summary>VICReg on <paramref name="backbone"/> with its expander.</summary>
    public VicregMethod(Backbone backbone, VicregOptions options) : base("vicreg")
    {
        _options = options;
        this.backbone = backbone;
        int width = options.ExpanderDim > 0 ? options.ExpanderDim : 4 * backbone.FeatureDim;
        expander = Sequential(
            ("0", Linear(backbone.FeatureDim, width)), ("1", BatchNorm1d(width)), ("2", ReLU()),
            ("3", Linear(width, width)), ("4", BatchNorm1d(width)), ("5", ReLU()),
            ("6", Linear(width, width)));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;

    /// <inheritdoc/>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        int size = (int)batch.InstanceIndices.shape[0];
        var z = BatchNorms.Sequence(expander, backbone.call(BothViews(batch)));
        // Variance and covariance are statistics of the global batch: the ranks' embeddings are gathered, with gradient.
        var (invariance, variance, covariance) = VicregLosses.Terms(Collectives.GatherAcross(Processes, z[..size]), Collectives.GatherAcross(Processes, z[size..]));
        var total = invariance.mul(Kept(_options.InvarianceWeight)).add(variance.mul(Kept(_options.VarianceWeight)), Kept(1)).add(covariance.mul(Kept(_options.CovarianceWeight)), Kept(1));
        return new MethodLoss(total, new[] { new LossTerm("invariance", invariance), new LossTerm("variance", variance), new LossTerm("covariance", covariance) });
    }
}
