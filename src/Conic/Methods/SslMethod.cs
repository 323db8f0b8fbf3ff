using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>One named term of a method's loss, a scalar tensor (logged per epoch).</summary>
public sealed record LossTerm(string Name, Tensor Value);

/// <summary>What one training step of a method returns: the loss to back-propagate and its terms.</summary>
public sealed record MethodLoss(Tensor Total, IReadOnlyList<LossTerm> Terms);

/// <summary>
/// One step's input: augmented views of the same B images (Views[0] and Views[1] are the two main views, each
/// [B, C, H, W]), each image's instance index [B] int64 in 0..N-1, and how far training has come (0 to 1).
/// </summary>
public sealed record TrainingBatch(IReadOnlyList<Tensor> Views, Tensor InstanceIndices, double Progress);

/// <summary>Parameters that share a learning-rate multiplier and a weight decay.</summary>
public sealed record ParameterGroup(string Name, IReadOnlyList<Parameter> Parameters, double LearningRateScale, double WeightDecay);

/// <summary>
/// What every self-supervised method shares: a backbone whose features are evaluated and exported, and a training
/// step on two augmented views of a batch. A method adds its heads and its loss; the trainer owns the loop.
/// </summary>
public abstract class SslMethod : nn.Module
{
    protected SslMethod(string name, ResNet backbone) : base(name)
    {
        Backbone = backbone;
    }

    /// <summary>The encoder being pretrained (registered by the subclass as the field <c>backbone</c>).</summary>
    public ResNet Backbone { get; }

    /// <summary>The loss for one batch.</summary>
    public abstract MethodLoss TrainingStep(TrainingBatch batch);

    /// <summary>How the optimiser treats the parameters; by default all share the base rate and weight decay.</summary>
    public virtual IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) =>
        new[] { new ParameterGroup("all", parameters().ToArray(), 1.0, weightDecay) };
}
