using Conic.Losses;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace Conic.Methods;

/// <summary>
/// InstDisc (Wu et al. 2018, lemniscate): backbone → linear → 128-d normalised features; a memory bank holds one
/// feature per instance. Each view is classified against the bank (its own entry is the positive) with a
/// non-parametric softmax: exact over the whole bank when it is no larger than <see cref="InstDiscOptions.Negatives"/>,
/// otherwise over the positive and that many uniformly drawn entries (the paper's NCE, as a sampled softmax).
/// After the step, bank entries move towards the new features.
/// </summary>
public sealed class InstDiscMethod : SslMethod
{
    readonly ResNet backbone;
    readonly Linear head;
    readonly Tensor memory;
    readonly InstDiscOptions _options;

    public InstDiscMethod(ResNet backbone, int instanceCount, InstDiscOptions options) : base("instdisc")
    {
        _options = options;
        this.backbone = backbone;
        head = Linear(backbone.FeatureDim, options.EmbeddingDim);
        memory = F.normalize(rand(instanceCount, options.EmbeddingDim).mul_(2).sub_(1), dim: 1);
        RegisterComponents();
    }

    public override ResNet Backbone => backbone;

    internal Tensor Memory => memory;

    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        var features = F.normalize(head.call(backbone.call(BothViews(batch))), dim: 1);
        var targets = BothViewTargets(batch);
        long instances = memory.shape[0];
        Tensor loss;
        if (instances <= _options.Negatives)
        {
            loss = F.cross_entropy(features.matmul(memory.t()).div_(_options.Temperature), targets);
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
        var mean = features[..size].add(features[size..]).div_(2);
        var updated = memory[batch.InstanceIndices].mul(_options.BankMomentum).add_(mean, alpha: 1 - _options.BankMomentum);
        memory.index_copy_(0, batch.InstanceIndices, F.normalize(updated, dim: 1));
    }
}
