using Conic.Losses;
using Conic.Models;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>
/// BYOL (Grill et al. 2020): online backbone → projector → predictor regresses the target network's projection of
/// the other view (2 − 2cos, both directions); the target is an EMA of the online backbone and projector whose
/// momentum rises from <see cref="ByolOptions.BaseMomentum"/> to 1 on a cosine.
/// </summary>
public sealed class ByolMethod : SslMethod
{
    readonly ResNet backbone;
    readonly ProjectionHead projector;
    readonly ProjectionHead predictor;
    readonly MomentumEncoder target;
    readonly ByolOptions _options;

    public ByolMethod(ResNet backbone, ByolOptions options) : base("byol")
    {
        _options = options;
        this.backbone = backbone;
        int hidden = 4 * backbone.FeatureDim;
        projector = new ProjectionHead(backbone.FeatureDim, hidden, options.ProjectionDim);
        predictor = new ProjectionHead(options.ProjectionDim, hidden, options.ProjectionDim);
        target = new MomentumEncoder((backbone, new ResNet(backbone.Options)), (projector, new ProjectionHead(backbone.FeatureDim, hidden, options.ProjectionDim)));
        RegisterComponents();
    }

    public override ResNet Backbone => backbone;

    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        int size = (int)batch.InstanceIndices.shape[0];
        var views = BothViews(batch);
        var predictions = predictor.call(projector.call(backbone.call(views)));
        var targets = target.call(views);
        var loss = ContrastiveLosses.NormalizedMse(predictions[..size], targets[size..])
            .add(ContrastiveLosses.NormalizedMse(predictions[size..], targets[..size]));
        return new MethodLoss(loss, new[] { new LossTerm("regression", loss) });
    }

    public override void AfterOptimizerStep(TrainingBatch batch, MethodLoss loss) =>
        target.Update(MomentumEncoder.CosineMomentum(_options.BaseMomentum, batch.Progress), backbone, projector);
}
