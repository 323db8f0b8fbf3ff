using Conic.Configuration;
using Conic.Distributed;
using Conic.Losses;
using Conic.Models;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods;

/// <summary>MoCo v1 / v2 (He et al. 2019; Chen et al. 2020): momentum key encoder and a queue of negatives.</summary>
public sealed record MocoOptions : MethodSettings
{
    /// <summary>null: 0.07 for v1, 0.2 for v2.</summary>
    public double? Temperature { get; init; }
    /// <summary>
    /// 65,536 in the paper (5 % of ImageNet); capped at half the number of instances so that the queue rarely holds a
    /// stale key of a query's own image.
    /// </summary>
    public int QueueSize { get; init; } = 4096;
    /// <summary>0.999 in the paper for 800 steps an epoch; 0.99 for runs of a few thousand steps.</summary>
    public double EncoderMomentum { get; init; } = 0.99;
    /// <summary>
    /// Shuffling-BN substitute on one device: the batch is cut into this many groups that normalise separately, and
    /// keys are encoded in shuffled groups, so a query and its key never share BatchNorm statistics.
    /// </summary>
    public int ShuffleGroups { get; init; } = 4;
    /// <summary>Size of the embedding and of the queue's keys.</summary>
    public int EmbeddingDim { get; init; } = 128;
}

/// <summary>
/// MoCo (He et al. 2019) and MoCo v2 (Chen et al. 2020): a query encoder trained with InfoNCE against keys from a
/// momentum encoder and a queue of past keys. v1 ends in a linear layer (T = 0.07), v2 in an MLP (T = 0.2).
/// The loss is symmetrised (each view is once the query), as in solo-learn's MoCo v2+. On one device, shuffling BN
/// becomes shuffled groups: queries normalise within fixed groups, keys within groups of a shuffled batch.
/// </summary>
public sealed class MocoMethod : SslMethod
{
    static readonly Settings<MocoOptions> SharedSettings = new Settings<MocoOptions>()
        .OptionalNumber("--moco-temperature", "T", "temperature", o => o.Temperature, (o, v) => o with { Temperature = v }, ValueRange.Temperature,
                        _ => "0.07 for v1, 0.2 for v2")
        .Integer("--moco-queue", "K", "queue length (capped at half the instance count)", o => o.QueueSize, (o, v) => o with { QueueSize = v }, ValueRange.AtLeast(1))
        .Number("--moco-momentum", "M", "key-encoder momentum", o => o.EncoderMomentum, (o, v) => o with { EncoderMomentum = v }, ValueRange.UnitInterval)
        .Integer("--moco-shuffle-groups", "G", "BatchNorm groups that stand in for shuffling BN across GPUs", o => o.ShuffleGroups,
                 (o, v) => o with { ShuffleGroups = v }, ValueRange.AtLeast(1))
        .Integer("--moco-embedding-dim", "D", "size of the queries and keys", o => o.EmbeddingDim, (o, v) => o with { EmbeddingDim = v }, ValueRange.AtLeast(1));

    /// <summary>MoCo v1 (a linear projection, τ 0.07) as the CLI knows it.</summary>
    public static readonly MethodDefinition Version1 = MethodDefinition.Of("mocov1",
        "MoCo v1 (He et al. 2019): momentum key encoder, queue of negatives, linear head, T = 0.07", new MocoOptions(), SharedSettings,
        (backbone, instances, _, options) => new MocoMethod(backbone, instances, options, version2: false));

    /// <summary>MoCo v2 (an MLP projection, τ 0.2) as the CLI knows it.</summary>
    public static readonly MethodDefinition Version2 = MethodDefinition.Of("mocov2",
        "MoCo v2 (Chen et al. 2020): MoCo with an MLP head and T = 0.2", new MocoOptions(), SharedSettings,
        (backbone, instances, _, options) => new MocoMethod(backbone, instances, options, version2: true));

    readonly Backbone backbone;
    readonly Module<Tensor, Tensor> head;
    readonly MomentumEncoder keyEncoder;
    readonly Tensor queue;
    readonly Tensor queuePointer;
    readonly MocoOptions _options;
    readonly double _temperature;

    /// <summary>MoCo on <paramref name="backbone"/> with a momentum key encoder and a queue of negatives; <paramref name="version2"/> makes it v2 (MLP projection).</summary>
    public MocoMethod(Backbone backbone, int instanceCount, MocoOptions options, bool version2) : base(version2 ? "mocov2" : "mocov1")
    {
        _options = options;
        _temperature = options.Temperature ?? (version2 ? 0.2 : 0.07);
        this.backbone = backbone;
        head = Head(backbone.FeatureDim, options.EmbeddingDim, version2);
        keyEncoder = new MomentumEncoder((backbone, Backbone.Create(backbone.Options)), (head, Head(backbone.FeatureDim, options.EmbeddingDim, version2)));
        int queueSize = Math.Max(1, Math.Min(options.QueueSize, instanceCount / 2));
        queue = F.normalize(randn(queueSize, options.EmbeddingDim), dim: 1);
        queuePointer = zeros(1, dtype: ScalarType.Int64);
        RegisterComponents();
    }

    static Module<Tensor, Tensor> Head(int features, int embedding, bool mlp) =>
        mlp ? new ProjectionHead(features, 4 * features, embedding) : Linear(features, embedding);

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;

    /// <inheritdoc/>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        // Across P ranks each runs its share of the groups, as MoCo's GPUs each ran one (shuffle-BN).
        int groups = Math.Max(1, _options.ShuffleGroups / Processes.Size);
        Tensor Query(Tensor view) => InGroups(v => head.call(backbone.call(v)), view, groups, order: null);
        Tensor Key(Tensor view) => Processes.IsDistributed
            ? ShuffledAcrossRanks(view, groups, batch.Random)
            : InGroups(keyEncoder.call, view, groups, randperm(view.shape[0], generator: batch.Random).to(view.device));

        var query1 = Query(batch.Views[0]);
        var query2 = Query(batch.Views[1]);
        var key1 = Key(batch.Views[0]);
        var key2 = Key(batch.Views[1]);
        var negatives = queue.clone();
        var loss = ContrastiveLosses.InfoNce(query1, key2, negatives, _temperature)
            .add(ContrastiveLosses.InfoNce(query2, key1, negatives, _temperature), Kept(1)).div_(Kept(2));
        // The queue takes the global batch's keys, in one process's order, on every rank.
        var keys = cat(new[] { Collectives.GatherConstant(Processes, key1), Collectives.GatherConstant(Processes, key2) }, 0);
        return new MethodLoss(loss, new[] { new LossTerm("infonce", loss) }, F.normalize(keys, dim: 1));
    }

    /// <summary>
    /// Shuffle-BN over ranks as in MoCo's code: the global batch of key views is gathered, permuted (the same
    /// permutation on every rank), each rank encodes its slice in its groups, and the keys are gathered and put back
    /// in order; this rank keeps its own images' keys.
    /// </summary>
    Tensor ShuffledAcrossRanks(Tensor view, int groups, Generator random)
    {
        using var noGrad = no_grad();
        long share = view.shape[0];
        var all = Processes.AllGather(view);
        var order = randperm(all.shape[0], generator: random).to(view.device);
        var keys = InGroups(keyEncoder.call, all[order].narrow(0, Processes.Rank * share, share), groups, order: null);
        return Processes.AllGather(keys)[argsort(order)].narrow(0, Processes.Rank * share, share);
    }

    /// <summary>Moves the key encoder towards the query encoder and enqueues this step's keys (oldest out).</summary>
    public override void AfterOptimizerStep(TrainingBatch batch, MethodLoss loss)
    {
        keyEncoder.Update(_options.EncoderMomentum, backbone, head);
        Enqueue(loss.Memorised!);
    }

    internal void Enqueue(Tensor keys)
    {
        using var noGrad = no_grad();
        long size = queue.shape[0], start = queuePointer.item<long>();
        var positions = arange(Kept(start), Kept(start + keys.shape[0]), Kept(1), device: queue.device).remainder_(Kept(size));
        var kept = keys.shape[0] > size ? keys[^(int)size..] : keys;
        queue.index_copy_(0, positions[^(int)kept.shape[0]..], kept);
        queuePointer.fill_(Kept((start + keys.shape[0]) % size));
    }

    internal Tensor Queue => queue;

    /// <summary>
    /// Runs <paramref name="network"/> on groups of the batch so that each group has its own BatchNorm statistics;
    /// with an <paramref name="order"/>, on the batch permuted by it (then restored).
    /// </summary>
    static Tensor InGroups(Func<Tensor, Tensor> network, Tensor batch, int groups, Tensor? order)
    {
        long size = batch.shape[0];
        int count = (int)Math.Max(1, Math.Min(groups, size / 2));
        var input = order is null ? batch : batch[order];
        var outputs = input.chunk(count, 0).Select(network).ToArray();
        var output = cat(outputs, 0);
        return order is null ? output : output[argsort(order)];
    }
}
