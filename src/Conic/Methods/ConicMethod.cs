using Conic.Configuration;
using Conic.Distributed;
using Conic.Losses;
using Conic.Methods.InstanceClassifiers;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods;

/// <summary>The instance classifier's softmax: chunked over classes (memory O(views × chunk)) or through the full logits matrix.</summary>
public enum ClassifierHead
{
    /// <summary>Materialised while the logits are small (32 MB), chunked beyond.</summary>
    Auto,
    /// <summary>Over chunks of classes: memory O(views × chunk).</summary>
    Chunked,
    /// <summary>Through the full [views, N] logits matrix.</summary>
    Materialized,
}

/// <summary>Which representation of the two views the consistency loss pulls together.</summary>
public enum ConsistencyTarget
{
    /// <summary>The projected embeddings the classifier sees.</summary>
    Embedding,
    /// <summary>The backbone's features, the representation that is evaluated and exported.</summary>
    Features,
}

/// <summary>ConIC's settings. Defaults start from PIC (Cao et al. 2020) and were tuned on Fashion-MNIST (docs/results.md).</summary>
public sealed record ConicOptions : MethodSettings
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
    /// <summary>What the consistency loss pulls together (<see cref="ConsistencyTarget"/>).</summary>
    public ConsistencyTarget ConsistencyOn { get; init; } = ConsistencyTarget.Embedding;
    /// <summary>D, the embedding's size and the classifier's row length.</summary>
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
    /// <summary>
    /// Negatives per step: each view is classified among the batch's rows and this many rows drawn from the other
    /// instances (a sampled softmax), and only those rows are updated (<see cref="LazyRowUpdate"/>); 0 = all N (exact).
    /// </summary>
    public int Negatives { get; init; }
    /// <summary>Momentum of the classifier's own update when <see cref="Negatives"/> are sampled (the network's optimiser does not see it then).</summary>
    public double ClassifierMomentum { get; init; } = 0.9;
    /// <summary>
    /// A row starts as its image's embedding (the two views' mean, at the random rows' norm) the first time the image
    /// is in a batch. With many instances and few epochs most rows are still random when their image first comes, so
    /// the image's own class scores about 0 against trained rows of similar images, and the first epoch only pushes.
    /// </summary>
    public bool RowsFromFirstEmbedding { get; init; }

    /// <summary>λ at a point of training (<paramref name="progress"/> from 0 to 1).</summary>
    public double ConsistencyWeightAt(double progress) =>
        progress >= ConsistencyRamp ? ConsistencyWeight : ConsistencyWeight * progress / ConsistencyRamp;
}

/// <summary>
/// ConIC: backbone, projection MLP to a D-dim embedding, and a learned N-way instance classifier W [N, D] (computed by
/// one of the <see cref="InstanceClassifier"/> strategies). Loss = mean over both views of the instance-classification
/// cross-entropy + λ · consistency(view1, view2).
/// </summary>
public sealed class ConicMethod : SslMethod
{
    /// <summary>ConIC as the CLI, config files and the registry know it: name, summary, settings and how to build it.</summary>
    public static readonly MethodDefinition Definition = MethodDefinition.Of("conic",
        "ConIC: every image its own class of a learnable N-way classifier, plus consistency between two views", new ConicOptions(),
        new Settings<ConicOptions>()
            .Number("--temperature", "T", "temperature of the instance classifier", o => o.Temperature, (o, v) => o with { Temperature = v }, ValueRange.Temperature)
            .Number("--lambda", "W", "weight of the consistency loss (0 = classification only)", o => o.ConsistencyWeight, (o, v) => o with { ConsistencyWeight = v },
                    new(0, 1e4, Why: "the consistency term is at most 4, so larger weights only swamp classification"))
            .Number("--lambda-ramp", "F", "fraction of training over which lambda rises linearly from 0 (0 = constant)", o => o.ConsistencyRamp,
                    (o, v) => o with { ConsistencyRamp = v }, ValueRange.UnitInterval)
            .Choice("--consistency-on", "WHAT", "what the consistency loss pulls together: embedding (projection output) or features (backbone output)",
                    o => o.ConsistencyOn, (o, v) => o with { ConsistencyOn = v }, ("embedding", ConsistencyTarget.Embedding), ("features", ConsistencyTarget.Features))
            .Integer("--embedding-dim", "D", "embedding size (classifier rows)", o => o.EmbeddingDim, (o, v) => o with { EmbeddingDim = v }, ValueRange.AtLeast(1))
            .Integer("--projection-hidden", "H", "hidden width of the projection MLP; 0 = 4 x feature width", o => o.ProjectionHidden,
                     (o, v) => o with { ProjectionHidden = v }, ValueRange.NonNegative)
            .Number("--classifier-lr-scale", "X", "classifier learning rate as a multiple of the network's", o => o.ClassifierLearningRateScale,
                    (o, v) => o with { ClassifierLearningRateScale = v }, ValueRange.NonNegative)
            .Number("--classifier-wd", "DECAY", "weight decay of the classifier", o => o.ClassifierWeightDecay, (o, v) => o with { ClassifierWeightDecay = v },
                    ValueRange.NonNegative)
            .Choice("--classifier-head", "KIND", "auto (materialized while the logits are under 32 MB, else chunked), chunked (memory O(batch x chunk)) or materialized (full logits matrix); all exact",
                    o => o.ClassifierHead, (o, v) => o with { ClassifierHead = v },
                    ("auto", ClassifierHead.Auto), ("chunked", ClassifierHead.Chunked), ("materialized", ClassifierHead.Materialized))
            .Integer("--classifier-chunk", "N", "classes per chunk of the chunked head; 0 = automatic", o => o.ClassifierChunk, (o, v) => o with { ClassifierChunk = v },
                     ValueRange.NonNegative)
            .Number("--classifier-init-std", "S", "standard deviation of the classifier's initial weights", o => o.ClassifierInitStd,
                    (o, v) => o with { ClassifierInitStd = v }, ValueRange.Positive)
            .Integer("--classifier-negatives", "K", "negatives per step: classify among the batch's rows and K rows drawn from the other instances, updating only those (with the momentum the others missed, as PIC); 0 = all N, exact",
                     o => o.Negatives, (o, v) => o with { Negatives = v }, ValueRange.NonNegative)
            .Choice("--classifier-rows-start", "HOW", "random (N(0, std)), or embedding: a row becomes its image's embedding the first time the image is seen",
                    o => o.RowsFromFirstEmbedding, (o, v) => o with { RowsFromFirstEmbedding = v }, ("random", false), ("embedding", true))
            .Number("--classifier-momentum", "M", "momentum of the classifier's update with --classifier-negatives", o => o.ClassifierMomentum,
                    (o, v) => o with { ClassifierMomentum = v }, ValueRange.Momentum),
        (backbone, instances, _, options, processes) => new ConicMethod(backbone, instances, options, processes));
    readonly Backbone backbone;
    readonly ProjectionHead projector;
    readonly Parameter classifier;
    // With sampled negatives the classifier updates its rows itself (LazyRowUpdate); these are saved in checkpoints.
    readonly Tensor? classifier_momentum;
    readonly Tensor? classifier_last_step;
    readonly Tensor? classifier_steps;
    readonly Tensor? classifier_seen;
    readonly ConicOptions _options;
    readonly long _instances;
    readonly InstanceClassifier _classifier;
    // In a data-parallel run this process's block of the classifier's rows (and of classifier_seen); null when whole.
    readonly RowShard? _shard;

    /// <param name="processes">In a data-parallel run the classifier is split by rows over the processes: each keeps
    /// N/P rows (and their optimiser state) and classifies with the exact sharded softmax (<see cref="ShardedClassifier"/>).</param>
    public ConicMethod(Backbone backbone, int instanceCount, ConicOptions options, ProcessGroup? processes = null) : base("conic")
    {
        _options = options;
        _instances = instanceCount;
        this.backbone = backbone;
        int hidden = options.ProjectionHidden > 0 ? options.ProjectionHidden : 4 * backbone.FeatureDim;
        projector = new ProjectionHead(backbone.FeatureDim, hidden, options.EmbeddingDim);
        // The whole matrix is drawn on every process, so that P processes start from one process's weights.
        var initial = randn(instanceCount, options.EmbeddingDim).mul_(Kept(options.ClassifierInitStd));
        if (processes is { IsDistributed: true })
        {
            if (options.Negatives > 0)
                throw new ConicException("--classifier-negatives with --distributed: the classifier is split over the processes with an exact softmax, " +
                                         "which needs no sampled negatives; leave out --classifier-negatives");
            UseProcesses(processes);
            _shard = RowShard.Of(instanceCount, processes);
            using var whole = initial;
            initial = _shard.Value.Take(whole).clone();
        }
        long rows = _shard?.Count ?? instanceCount;
        classifier = new Parameter(initial);
        if (_shard is { } shard)
        {
            _classifier = new ShardedClassifier(classifier, options, processes!, shard);
        }
        else if (options.Negatives > 0)
        {
            classifier_momentum = zeros(rows, options.EmbeddingDim);
            classifier_last_step = full(rows, Kept(-1L), dtype: ScalarType.Int64);
            classifier_steps = zeros(1, dtype: ScalarType.Int64);
            _classifier = new SampledClassifier(classifier, options, classifier_momentum, classifier_last_step, classifier_steps);
        }
        else _classifier = new ExactClassifier(classifier, options);
        // 0/1 in int64: checkpoints hold float32 and int64 tensors.
        if (options.RowsFromFirstEmbedding) classifier_seen = zeros(rows, dtype: ScalarType.Int64);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;
    internal ProjectionHead Projector => projector;

    /// <summary>With <c>--small-crops</c>, multi-crop as in PIC: small crops are classified too (through the classifier
    /// detached, so they train the network and not the rows) and pulled towards both main views.</summary>
    public override bool UsesSmallCrops => true;

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, long> RowShardedState =>
        _shard is null ? new Dictionary<string, long>()
        : new[] { nameof(classifier) }.Concat(classifier_seen is null ? [] : [nameof(classifier_seen)]).ToDictionary(name => name, _ => _instances);

    /// <summary>Instance classification of both views plus λ times their consistency; with small crops, every view's mean.</summary>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        int size = (int)batch.InstanceIndices.shape[0];
        var features = backbone.call(BothViews(batch));
        var embeddings = projector.call(features);
        if (classifier_seen is not null) StartUnseenRows(batch.InstanceIndices, embeddings);
        var classification = _classifier.Loss(embeddings, BothViewTargets(batch), batch);
        var pulled = _options.ConsistencyOn == ConsistencyTarget.Features ? features : embeddings;
        var consistency = ConicLosses.Consistency(pulled[..size], pulled[size..]);
        if (batch.Views.Count > 2) (classification, consistency) = WithSmallCrops(batch, classification, consistency, pulled);
        var total = classification.add(consistency.mul(Kept(_options.ConsistencyWeightAt(batch.Progress))), Kept(1));
        return new MethodLoss(total, new[] { new LossTerm("classification", classification), new LossTerm("consistency", consistency) });
    }

    /// <summary>
    /// Both terms over all views: the small crops are classified (through the rows detached) and each is pulled towards
    /// both main views; every view weighs the same in the mean.
    /// </summary>
    (Tensor Classification, Tensor Consistency) WithSmallCrops(TrainingBatch batch, Tensor classification, Tensor consistency, Tensor pulled)
    {
        int size = (int)batch.InstanceIndices.shape[0], smallCrops = batch.Views.Count - 2;
        var smallFeatures = backbone.call(cat(batch.Views.Skip(2).ToArray(), 0));
        var smallEmbeddings = projector.call(smallFeatures);
        var smallTargets = cat(Enumerable.Repeat(batch.InstanceIndices, smallCrops).ToArray(), 0);
        var smallClassification = _classifier.SmallCropLoss(smallEmbeddings, smallTargets, smallCrops);
        classification = classification.mul(Kept(2)).add(smallClassification.mul(Kept(smallCrops)), Kept(1)).div(Kept(2 + smallCrops));
        var smallPulled = (_options.ConsistencyOn == ConsistencyTarget.Features ? smallFeatures : smallEmbeddings).chunk(smallCrops, 0);
        var pairs = smallPulled.Select(crop => ConicLosses.Consistency(crop, pulled[..size]).add(ConicLosses.Consistency(crop, pulled[size..]), Kept(1)).div(Kept(2)));
        consistency = pairs.Aggregate(consistency, (sum, pair) => sum.add(pair, Kept(1))).div(Kept(1 + smallCrops));
        return (classification, consistency);
    }

    /// <summary>
    /// Rows of images seen for the first time become the mean of their two views' unit embeddings, at the initial rows'
    /// norm; with the rows split over processes, each process starts its own rows among the global batch's images.
    /// </summary>
    void StartUnseenRows(Tensor images, Tensor embeddings)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long size = images.shape[0];
        var unit = nn.functional.normalize(embeddings.detach(), dim: 1);
        var means = nn.functional.normalize(unit[..(int)size].add(unit[(int)size..], Kept(1)), dim: 1);
        var (own, ownMeans) = _classifier.Held(images, means);
        var unseen = classifier_seen!.index_select(0, own).eq(Kept(0)).nonzero().squeeze(1);
        if (unseen.shape[0] == 0) return;
        var rows = own.index_select(0, unseen);
        classifier.index_copy_(0, rows, ownMeans.index_select(0, unseen).mul(Kept(_options.ClassifierInitStd * Math.Sqrt(_options.EmbeddingDim))));
        classifier_seen.index_fill_(0, rows, Kept(1));
    }

    /// <inheritdoc/>
    public override void AfterOptimizerStep(TrainingBatch batch, MethodLoss loss) => _classifier.AfterOptimizerStep(batch.LearningRate);

    /// <summary>The network; and the classifier, unless negatives are sampled (then the method updates its rows itself).</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay)
    {
        var network = new ParameterGroup("network", NamedTrainableParameters().Where(p => p.Name != nameof(classifier)).Select(p => p.Parameter).ToArray(), 1.0, weightDecay);
        return _classifier.OptimizerUpdatesRows
            ? [network, new ParameterGroup(nameof(classifier), [classifier], _options.ClassifierLearningRateScale, _options.ClassifierWeightDecay)]
            : [network];
    }
}
