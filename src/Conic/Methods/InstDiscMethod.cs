using Conic.Configuration;
using Conic.Distributed;
using Conic.Losses;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods;

/// <summary>InstDisc (Wu et al. 2018): non-parametric softmax over a memory bank of instance features.</summary>
public sealed record InstDiscOptions : MethodSettings
{
    /// <summary>
    /// 0.2 (paper: 0.07): with a few thousand instances the softmax over the whole bank at 0.07 learned far slower
    /// (30 epochs, 2,048 instances: kNN 63.5 % at 0.07, 74.5 % at 0.2).
    /// </summary>
    public double Temperature { get; init; } = 0.2;
    /// <summary>Negatives drawn from the bank per step; when the bank is no larger, the exact softmax over it is used.</summary>
    public int Negatives { get; init; } = 4096;
    /// <summary>Bank update v ← m·v + (1 − m)·f, then renormalised (0.5 in lemniscate).</summary>
    public double BankMomentum { get; init; } = 0.5;
    /// <summary>Size of the embedding and of the memory bank's rows.</summary>
    public int EmbeddingDim { get; init; } = 128;
}

/// <summary>
/// InstDisc (Wu et al. 2018, lemniscate): backbone → linear → 128-d normalised features; a memory bank holds one
/// feature per instance. Each view is classified against the bank (its own entry is the positive) with a
/// non-parametric softmax: exact over the whole bank when it is no larger than <see cref="InstDiscOptions.Negatives"/>,
/// otherwise over the positive and that many uniformly drawn entries (the paper's NCE, as a sampled softmax).
/// After the step, bank entries move towards the new features.
/// </summary>
public sealed class InstDiscMethod : SslMethod
{
    /// <summary>InstDisc as the CLI, config files and the registry know it.</summary>
    public static readonly MethodDefinition Definition = MethodDefinition.Of("instdisc",
        "InstDisc (Wu et al. 2018): non-parametric softmax over a memory bank of instance features", new InstDiscOptions(),
        new Settings<InstDiscOptions>()
            .Number("--instdisc-temperature", "T", "temperature", o => o.Temperature, (o, v) => o with { Temperature = v }, ValueRange.Temperature)
            .Integer("--instdisc-negatives", "K", "memory-bank negatives per step (exact softmax when the bank is smaller)", o => o.Negatives,
                     (o, v) => o with { Negatives = v }, ValueRange.AtLeast(1))
            .Number("--instdisc-bank-momentum", "M", "memory-bank momentum (0 = replace entries with the newest features)", o => o.BankMomentum,
                    (o, v) => o with { BankMomentum = v }, ValueRange.UnitInterval)
            .Integer("--instdisc-embedding-dim", "D", "size of the bank's features", o => o.EmbeddingDim, (o, v) => o with { EmbeddingDim = v }, ValueRange.AtLeast(1)),
        (backbone, instances, _, options) => new InstDiscMethod(backbone, instances, options));

    readonly Backbone backbone;
    readonly Linear head;
    readonly Tensor memory;
    readonly InstDiscOptions _options;

    /// <summary>InstDisc on <paramref name="backbone"/> with a memory bank of <paramref name="instanceCount"/> rows.</summary>
    public InstDiscMethod(Backbone backbone, int instanceCount, InstDiscOptions options) : base("instdisc")
    {
        _options = options;
        this.backbone = backbone;
        head = Linear(backbone.FeatureDim, options.EmbeddingDim);
        memory = F.normalize(rand(instanceCount, options.EmbeddingDim).mul_(Kept(2)).sub_(Kept(1)), dim: 1);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;

    internal Tensor Memory => memory;

    /// <inheritdoc/>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        var features = F.normalize(head.call(backbone.call(BothViews(batch))), dim: 1);
        var targets = BothViewTargets(batch);
        long instances = memory.shape[0];
        Tensor loss;
        if (instances <= _options.Negatives)
        {
            loss = F.cross_entropy(features.matmul(memory.t()).div_(Kept(_options.Temperature)), targets);
        }
        else
        {
            var drawn = randint(0, instances, new[] { (long)_options.Negatives }, generator: batch.Random).to(memory.device);
            loss = ContrastiveLosses.InfoNce(features, memory[targets], memory[drawn], _options.Temperature);
        }
        return new MethodLoss(loss, new[] { new LossTerm("nce", loss) }, features.detach());
    }

    /// <summary>v ← normalise(m·v + (1 − m)·f̄), f̄ the mean of the image's two view features.</summary>
    public override void AfterOptimizerStep(TrainingBatch batch, MethodLoss loss)
    {
        using var noGrad = no_grad();
        int size = (int)batch.InstanceIndices.shape[0];
        var features = loss.Memorised!;
        // Every rank updates its copy of the bank with the whole global batch.
        var mean = Collectives.GatherConstant(Processes, features[..size].add(features[size..], Kept(1)).div_(Kept(2)));
        var indices = Collectives.GatherConstant(Processes, batch.InstanceIndices);
        var updated = memory[indices].mul(Kept(_options.BankMomentum)).add_(mean, alpha: Kept(1 - _options.BankMomentum));
        memory.index_copy_(0, indices, F.normalize(updated, dim: 1));
    }
}
