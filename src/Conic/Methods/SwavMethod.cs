using Conic.Losses;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace Conic.Methods;

/// <summary>
/// SwAV (Caron et al. 2020): normalised embeddings scored against K normalised prototypes; the two main views get
/// equal-partition codes by Sinkhorn-Knopp, and every other view (including small multi-crops) predicts them
/// (swapped prediction). Prototypes are frozen for the first epoch(s).
/// </summary>
public sealed class SwavMethod : SslMethod
{
    readonly ResNet backbone;
    readonly ProjectionHead projector;
    readonly Linear prototypes;
    readonly SwavOptions _options;
    readonly double _frozenUntil;

    public SwavMethod(ResNet backbone, SwavOptions options, int epochs) : base("swav")
    {
        _options = options;
        _frozenUntil = (double)options.FreezePrototypesEpochs / epochs;
        this.backbone = backbone;
        projector = new ProjectionHead(backbone.FeatureDim, 4 * backbone.FeatureDim, options.EmbeddingDim);
        prototypes = Linear(options.EmbeddingDim, options.Prototypes, hasBias: false);
        RegisterComponents();
    }

    public override ResNet Backbone => backbone;

    public override bool UsesSmallCrops => true;

    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        using (no_grad()) prototypes.weight!.copy_(F.normalize(prototypes.weight!, dim: 1));
        var weight = batch.Progress < _frozenUntil ? prototypes.weight!.detach() : prototypes.weight!;
        // Views of one resolution share a forward pass: the two main views, then the small crops.
        var groups = new List<Tensor> { BothViews(batch) };
        if (batch.Views.Count > 2) groups.Add(cat(batch.Views.Skip(2).ToArray(), 0));
        var scores = cat(groups.Select(g => F.linear(F.normalize(projector.call(backbone.call(g)), dim: 1), weight)).ToArray(), 0)
            .chunk(batch.Views.Count, 0);

        Tensor loss = zeros(1, device: scores[0].device).squeeze();
        for (int main = 0; main < 2; main++)
        {
            var codes = ContrastiveLosses.SinkhornKnopp(scores[main].detach(), _options.Epsilon, _options.SinkhornIterations);
            for (int other = 0; other < scores.Length; other++)
                if (other != main) loss = loss.add(ContrastiveLosses.SwappedPrediction(codes, scores[other], _options.Temperature));
        }
        loss = loss.div(2 * (scores.Length - 1));
        return new MethodLoss(loss, new[] { new LossTerm("swapped", loss) });
    }
}
