using Conic.Losses;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>The instance classifier's softmax: chunked over classes (memory O(views × chunk)) or through the full logits matrix.</summary>
public enum ClassifierHead { Auto, Chunked, Materialized }

/// <summary>Which representation of the two views the consistency loss pulls together.</summary>
public enum ConsistencyTarget
{
    /// <summary>The projected embeddings the classifier sees.</summary>
    Embedding,
    /// <summary>The backbone's features, the representation that is evaluated and exported.</summary>
    Features,
}

/// <summary>ConIC's settings. Defaults start from PIC (Cao et al. 2020) and were tuned on Fashion-MNIST (README).</summary>
public sealed record ConicOptions
{
    /// <summary>τ in cos(z, w_i) / τ.</summary>
    public double Temperature { get; init; } = 0.1;
    /// <summary>λ, the weight of the consistency loss; 0 is the classification-only ablation.</summary>
    public double ConsistencyWeight { get; init; } = 1.0;
    /// <summary>
    /// Fraction of training over which λ rises linearly from 0 to <see cref="ConsistencyWeight"/> (0 = constant λ):
    /// lets the classifier spread the instances before a large λ can pull every embedding together.
    /// </summary>
    public double ConsistencyRamp { get; init; }
    public ConsistencyTarget ConsistencyOn { get; init; } = ConsistencyTarget.Embedding;
    public int EmbeddingDim { get; init; } = 128;
    /// <summary>Hidden width of the projection MLP; 0 means four times the backbone's feature width.</summary>
    public int ProjectionHidden { get; init; }
    /// <summary>The classifier's learning rate as a multiple of the network's.</summary>
    public double ClassifierLearningRateScale { get; init; } = 10.0;
    /// <summary>
    /// Weight decay on the classifier. 0 by default: its rows are normalised in the forward pass, so decay only
    /// shrinks them between visits (and with momentum moves rows that are not in the batch).
    /// </summary>
    public double ClassifierWeightDecay { get; init; }
    /// <summary>Classes per chunk of the classifier's softmax; 0 sizes chunks from the batch (ConicLosses.AutomaticChunkSize).</summary>
    public int ClassifierChunk { get; init; }
    /// <summary>How the classifier's softmax is computed; every choice gives the same loss and gradients.</summary>
    public ClassifierHead ClassifierHead { get; init; } = ClassifierHead.Auto;
    /// <summary>Standard deviation of the classifier's initial weights.</summary>
    public double ClassifierInitStd { get; init; } = 0.01;

    /// <summary>λ at a point of training (<paramref name="progress"/> from 0 to 1).</summary>
    public double ConsistencyWeightAt(double progress) =>
        progress >= ConsistencyRamp ? ConsistencyWeight : ConsistencyWeight * progress / ConsistencyRamp;

    public void Validate()
    {
        Check.Temperature("--temperature", Temperature);
        Check.NonNegative("--lambda", ConsistencyWeight);
        Check.AtMost("--lambda", ConsistencyWeight, 1e4, "the consistency term is at most 4, so larger weights only swamp classification");
        Check.UnitInterval("--lambda-ramp", ConsistencyRamp);
        Check.Positive("--embedding-dim", EmbeddingDim);
        Check.NonNegative("--projection-hidden", ProjectionHidden);
        Check.NonNegative("--classifier-lr-scale", ClassifierLearningRateScale);
        Check.NonNegative("--classifier-wd", ClassifierWeightDecay);
        Check.NonNegative("--classifier-chunk", ClassifierChunk);
    }
}

/// <summary>
/// ConIC: backbone, projection MLP to a D-dim embedding, and a learned N-way instance classifier W [N, D].
/// Loss = mean over both views of the instance-classification cross-entropy + λ · consistency(view1, view2).
/// </summary>
public sealed class ConicMethod : SslMethod
{
    readonly ResNet backbone;
    readonly ProjectionHead projector;
    readonly Parameter classifier;
    readonly ConicOptions _options;

    public ConicMethod(ResNet backbone, int instanceCount, ConicOptions options) : base("conic")
    {
        options.Validate();
        _options = options;
        this.backbone = backbone;
        int hidden = options.ProjectionHidden > 0 ? options.ProjectionHidden : 4 * backbone.FeatureDim;
        projector = new ProjectionHead(backbone.FeatureDim, hidden, options.EmbeddingDim);
        classifier = new Parameter(randn(instanceCount, options.EmbeddingDim).mul_(options.ClassifierInitStd));
        RegisterComponents();
    }

    public override ResNet Backbone => backbone;
    internal ProjectionHead Projector => projector;

    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        int size = (int)batch.InstanceIndices.shape[0];
        var features = backbone.call(BothViews(batch));
        var embeddings = projector.call(features);
        var targets = BothViewTargets(batch);
        var classification = Materialize(targets.shape[0])
            ? ConicLosses.InstanceClassificationMaterialized(embeddings, classifier, targets, _options.Temperature)
            : ConicLosses.InstanceClassification(embeddings, classifier, targets, _options.Temperature, _options.ClassifierChunk);
        var pulled = _options.ConsistencyOn == ConsistencyTarget.Features ? features : embeddings;
        var consistency = ConicLosses.Consistency(pulled[..size], pulled[size..]);
        var total = classification.add(consistency.mul(_options.ConsistencyWeightAt(batch.Progress)));
        return new MethodLoss(total, new[] { new LossTerm("classification", classification), new LossTerm("consistency", consistency) });
    }

    /// <summary>
    /// Auto materialises the logits while they are small (up to <see cref="MaterializedLogitsLimit"/> floats, 32 MB):
    /// there one big product beats the chunked head's extra pass; beyond it the chunked head wins and its memory
    /// stays flat (bench/, README).
    /// </summary>
    bool Materialize(long views) => _options.ClassifierHead switch
    {
        ClassifierHead.Materialized => true,
        ClassifierHead.Chunked => false,
        _ => views * classifier.shape[0] <= MaterializedLogitsLimit,
    };

    public const long MaterializedLogitsLimit = 1L << 23;

    public override IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) => new[]
    {
        new ParameterGroup("network", NamedTrainableParameters().Where(p => p.Name != nameof(classifier)).Select(p => p.Parameter).ToArray(), 1.0, weightDecay),
        new ParameterGroup(nameof(classifier), new[] { classifier }, _options.ClassifierLearningRateScale, _options.ClassifierWeightDecay),
    };
}
