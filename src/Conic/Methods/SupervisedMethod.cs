using Conic.Configuration;
using Conic.Models;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>Plain supervised pretraining: the reference row of transfer tables. <see cref="Classes"/> 0 means the data's class count.</summary>
public sealed record SupervisedOptions : MethodSettings
{
    /// <summary>How many classes; 0 takes them from the labels.</summary>
    public int Classes { get; init; }
}

/// <summary>
/// Supervised pretraining (not self-supervised): backbone → linear classifier, cross-entropy on the labels of both
/// augmented views. Every SSL paper's transfer table has this row beside random initialisation; it needs labelled images.
/// </summary>
public sealed class SupervisedMethod : SslMethod
{
    /// <summary>Supervised training (the reference) as the CLI, config files and the registry know it.</summary>
    public static readonly MethodDefinition Definition = MethodDefinition.Of("supervised",
        "supervised pretraining with the images' labels (the reference row of transfer tables; not self-supervised)", new SupervisedOptions(),
        new Settings<SupervisedOptions>()
            .Integer("--supervised-classes", "K", "classes of the labels (0 = the data's)", o => o.Classes, (o, v) => o with { Classes = v }, ValueRange.AtLeast(0)),
        (backbone, _, _, options) => new SupervisedMethod(backbone, options));

    readonly Backbone backbone;
    readonly TorchSharp.Modules.Linear classifier;

    /// <summary>A linear classifier on <paramref name="backbone"/>'s features, trained with the labels of both views.</summary>
    public SupervisedMethod(Backbone backbone, SupervisedOptions options) : base("supervised")
    {
        if (options.Classes < 2) throw new ConicException("--method supervised: the labels need at least two classes");
        this.backbone = backbone;
        classifier = nn.Linear(backbone.FeatureDim, options.Classes);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;
    /// <inheritdoc/>
    public override bool NeedsLabels => true;

    /// <inheritdoc/>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        var labels = batch.Labels ?? throw new InvalidOperationException("the supervised method was given a batch without labels");
        var loss = nn.functional.cross_entropy(classifier.call(backbone.call(BothViews(batch))), cat([labels, labels], 0));
        return new MethodLoss(loss, [new LossTerm("cross_entropy", loss)]);
    }
}
